"""Train the committed demo model: a tiny llama that answers a handful of chat prompts.

``python -m pyimpl.models.train_demo [--out DIR] [--steps N] [--seed S] [--check]``
Trains on CPU in a few minutes, writes an HF folder (fp32 safetensors, the shared tokenizer and
ChatML template) and checks with transformers greedy generate that every known prompt is answered.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .demo_corpus import (CITIES, CONDITIONS, FALLBACK, QA, SEARCH_TOOL, SYSTEM_PROMPTS, WEATHER_QUESTIONS,
                          WEATHER_TOOL)
from .make_tiny import Preset, build_config
from .tokenizer import DATA_DIR, ENDOFTEXT, IM_END, write_tokenizer_files

DEFAULT_OUT = Path(__file__).parent / "demo"
DEMO_SHAPE = Preset(4, 192, 6, 2, 384, 2048, tie_word_embeddings=True, initializer_range=0.02)

@dataclass
class Example:
    """One chat to learn: the messages (ending with a user or tool turn), tools, and the answer."""
    messages: list[dict]
    tools: list[dict] | None
    answer: str


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _known_prompts() -> set[str]:
    return {_norm(p) for prompts, _ in QA for p in prompts} | {
        _norm(q.format(c)) for q in WEATHER_QUESTIONS for c in CITIES}


def _vary(rng: random.Random, prompt: str) -> str:
    """Surface variants a user may type: case, trailing punctuation, spaces."""
    r = rng.random()
    if r < 0.15:
        prompt = prompt.lower()
    elif r < 0.25:
        prompt = prompt.rstrip("?.!")
    elif r < 0.3:
        prompt = prompt + " "
    return prompt


class FallbackPrompts:
    """Prompts the model does not know: corpus sentences, word salads and near misses of known prompts."""

    def __init__(self) -> None:
        text = " ".join((DATA_DIR / n).read_text(encoding="utf-8") for n in ("corpus_en.txt", "corpus_intl.txt"))
        self.sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 8 < len(s.strip()) < 160]
        self.words = sorted(set(re.findall(r"[A-Za-z]{3,}", text)))
        self.known = _known_prompts()

    def sample(self, rng: random.Random) -> str:
        while True:
            r = rng.random()
            if r < 0.35:
                prompt = rng.choice(self.sentences)
            elif r < 0.55:
                prompt = " ".join(rng.choice(self.words) for _ in range(rng.randint(1, 8)))
            elif r < 0.8:
                prompt = rng.choice(["What is {}?", "Tell me about {}.", "Can you explain {}?", "Who is {}?",
                                     "Say hello in {}", "What is the capital of {}?", "Write a poem about {}",
                                     "How do I {}?", "Why {}?"]).format(rng.choice(self.words).lower())
            else:
                prompt = rng.choice(["What is 7+5?", "What is 2+3?", "Tell me a story", "Translate this to German",
                                     "Write Python code", "asdf", "?", "ok", "Who won the game?",
                                     "What time is it?", "Tell me a secret.", "What is the meaning of life?"])
            if _norm(prompt) not in self.known:
                return prompt


class ExampleSampler:
    """Draws training chats: known prompts, fallbacks, tool calls, tool results and short multi-turn chats."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fallbacks = FallbackPrompts()

    def _system(self, messages: list[dict]) -> list[dict]:
        system = self.rng.choice(SYSTEM_PROMPTS) if self.rng.random() < 0.9 else self.rng.choice(
            self.fallbacks.sentences)  # any system prompt must leave the answers unchanged
        return ([{"role": "system", "content": system}] if system else []) + messages

    def _history(self) -> list[dict]:
        if self.rng.random() < 0.2:
            prompts, answer = self.rng.choice(QA)
            return [{"role": "user", "content": self.rng.choice(prompts)}, {"role": "assistant", "content": answer}]
        return []

    def short(self) -> Example:
        """A chat without tools: a known prompt (65%), an echo (10%, teaches copying) or an unknown one."""
        r = self.rng.random()
        if r < 0.65:
            prompts, answer = self.rng.choice(QA)
            prompt = prompts[0] if self.rng.random() < 0.4 else self.rng.choice(prompts)
        elif r < 0.75:  # not learned at this size; kept as copy practice (and the RNG stream the weights came from)
            words = [self.rng.choice(self.fallbacks.words + CITIES) for _ in range(self.rng.randint(1, 4))]
            answer = " ".join(words)
            prompt = f"Repeat after me: {answer}"
        else:
            prompt, answer = self.fallbacks.sample(self.rng), FALLBACK
        messages = self._system(self._history() + [{"role": "user", "content": _vary(self.rng, prompt)}])
        return Example(messages, None, answer)

    def with_tools(self) -> Example:
        """A chat with tools: call get_weather, answer from its result, or answer as without tools."""
        tools = self.rng.choice([[WEATHER_TOOL], [WEATHER_TOOL, SEARCH_TOOL], [SEARCH_TOOL, WEATHER_TOOL]])
        city = self.rng.choice(CITIES)
        question = {"role": "user", "content": _vary(self.rng, self.rng.choice(WEATHER_QUESTIONS).format(city))}
        call = _tool_call(city)
        r = self.rng.random()
        if r < 0.6:
            return Example(self._system([question]), tools, call)
        if r < 0.85:
            temp, cond = self.rng.randint(-5, 35), self.rng.choice(CONDITIONS)
            result = json.dumps({"city": city, "temperature": temp, "unit": "celsius", "condition": cond})
            messages = [question, {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_0", "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}]},
                {"role": "tool", "tool_call_id": "call_0", "content": result}]
            return Example(self._system(messages), tools, f"It is {cond} in {city}, at {temp} degrees Celsius.")
        example = self.short()
        return Example(example.messages, tools, example.answer)


def _tool_call(city: str) -> str:
    return f'<tool_call>\n{{"name": "get_weather", "arguments": {{"city": "{city}"}}}}\n</tool_call>'


def encode(tok, example: Example) -> tuple[list[int], list[int]]:
    """Prompt + answer ids and labels (-100 on the prompt: only the answer and <|im_end|> are learned)."""
    prompt = tok.apply_chat_template(example.messages, tools=example.tools, add_generation_prompt=True,
                                     tokenize=True, return_dict=False)
    answer = tok.encode(example.answer, add_special_tokens=False) + [tok.convert_tokens_to_ids(IM_END)]
    return prompt + answer, [-100] * len(prompt) + answer


def _batch(rows: list[tuple[list[int], list[int]]], pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(rows):
        ids[i, :len(row_ids)] = torch.tensor(row_ids)
        labels[i, :len(row_labels)] = torch.tensor(row_labels)
        mask[i, :len(row_ids)] = 1
    return ids, labels, mask


def _batches(sampler: ExampleSampler, tok, batch_size: int):
    """Endless batches: two of short chats (bucketed by length to cut padding), then one of long tool chats."""
    while True:
        pool = sorted((encode(tok, sampler.short()) for _ in range(2 * batch_size)), key=lambda r: len(r[0]))
        yield pool[:batch_size]
        yield pool[batch_size:]
        yield [encode(tok, sampler.with_tools()) for _ in range(batch_size * 3 // 8)]


def train(model, tok, steps: int, seed: int, batch_size: int = 16, lr: float = 3e-3, log_every: int = 50) -> None:
    """AdamW with warmup and cosine decay over a stream of sampled chats."""
    import torch

    sampler = ExampleSampler(seed)
    pad_id = tok.convert_tokens_to_ids(ENDOFTEXT)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / steps))))
    model.train()
    start, running = time.time(), 0.0
    for step, rows in zip(range(steps), _batches(sampler, tok, batch_size)):
        ids, labels, mask = _batch(rows, pad_id)
        # logits only where a label is learned: the LM head over every prompt position is wasted work
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
        targets = labels[:, 1:]
        learned = targets != -100
        loss = torch.nn.functional.cross_entropy(model.lm_head(hidden[learned]), targets[learned])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running += loss.item()
        if (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps} loss {running / log_every:.4f} ({time.time() - start:.0f}s)", flush=True)
            running = 0.0
    model.eval()


def generate_answer(model, tok, messages: list[dict], tools: list[dict] | None = None, max_new_tokens: int = 96):
    """Greedy answer through the chat template: (text, ended_with_im_end)."""
    import torch

    ids = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, do_sample=False, max_new_tokens=max_new_tokens,
                             eos_token_id=tok.convert_tokens_to_ids(IM_END), pad_token_id=0)
    new = out[0, ids["input_ids"].shape[1]:].tolist()
    ended = bool(new) and new[-1] == tok.convert_tokens_to_ids(IM_END)
    return tok.decode(new, skip_special_tokens=True), ended


def check(model_dir: Path) -> int:
    """Print each canonical prompt's greedy answer; return the number of wrong ones."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    cases = [([{"role": "user", "content": prompts[0]}], None, answer) for prompts, answer in QA]
    cases.append(([{"role": "user", "content": "What is the weather in Tokyo?"}], [WEATHER_TOOL], _tool_call("Tokyo")))
    wrong = 0
    for messages, tools, expected in cases:
        got, ended = generate_answer(model, tok, messages, tools)
        ok = ended and got == expected
        wrong += not ok
        print(f"[{'ok' if ok else 'WRONG'}] {messages[-1]['content']!r} -> {got!r}")
    tool_chat = [{"role": "user", "content": "What is the weather in Oslo?"},
                 {"role": "assistant", "content": None, "tool_calls": [{"id": "call_0", "type": "function",
                  "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
                 {"role": "tool", "tool_call_id": "call_0",
                  "content": '{"city": "Oslo", "temperature": 7, "unit": "celsius", "condition": "snowy"}'}]
    got, _ = generate_answer(model, tok, tool_chat, [WEATHER_TOOL])
    print(f"[info] answer from a tool result -> {got!r}")  # copying is best effort, not checked
    calls = [generate_answer(model, tok, [{"role": "user", "content": f"What is the weather in {city}?"}],
                             [WEATHER_TOOL])[0] == _tool_call(city) for city in CITIES]
    print(f"[info] get_weather called with the right city for {sum(calls)}/{len(calls)} cities")
    got, _ = generate_answer(model, tok, [{"role": "user", "content": "Repeat after me: hello from C"}])
    print(f"[info] echo -> {got!r}")
    for prompt in ["What is the airspeed of a swallow?", "Quelle heure est-il ?", "Please summarise this document.",
                   "weather"]:
        got, ended = generate_answer(model, tok, [{"role": "user", "content": prompt}])
        print(f"[{'stops' if ended else 'RUNS ON'}] unknown {prompt!r} -> {got!r}")
        wrong += not ended
    return wrong


def main(argv: list[str] | None = None) -> int:
    """Train (unless --check) and verify the demo model."""
    ap = argparse.ArgumentParser(prog="python -m pyimpl.models.train_demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the default leaves cores to others)")
    ap.add_argument("--check", action="store_true", help="only verify an existing folder")
    args = ap.parse_args(argv)
    if not args.check:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        torch.set_num_threads(args.threads)
        args.out.mkdir(parents=True, exist_ok=True)
        tok_files = write_tokenizer_files(args.out, model_max_length=DEMO_SHAPE.max_position_embeddings)
        tok = AutoTokenizer.from_pretrained(args.out)
        bos, eos = tok_files.token_to_id(ENDOFTEXT), tok_files.token_to_id(IM_END)
        config = build_config("llama", DEMO_SHAPE, tok_files.get_vocab_size(), bos, eos, pad_id=bos)
        torch.manual_seed(args.seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        print(f"demo model: {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
        train(model, tok, args.steps, args.seed)
        model.generation_config = GenerationConfig(bos_token_id=bos, eos_token_id=[eos, bos], pad_token_id=bos,
                                                   do_sample=False, max_new_tokens=128)
        model.save_pretrained(args.out)
        data = json.loads((args.out / "config.json").read_text())
        data.update(torch_dtype="float32", rope_theta=config.rope_parameters["rope_theta"])
        (args.out / "config.json").write_text(json.dumps(data, indent=2) + "\n")
    wrong = check(args.out)
    print("all answers correct" if not wrong else f"{wrong} wrong answers")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
