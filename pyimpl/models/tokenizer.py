"""Byte-level BPE tokenizer and ChatML chat template shared by every generated model.

The tokenizer is trained with `tokenizers` on the corpus in ``data/`` and shipped as
``data/tokenizer.json`` so token ids never drift; ``python -m pyimpl.models.tokenizer``
retrains and rewrites it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

DATA_DIR = Path(__file__).parent / "data"
TOKENIZER_JSON = DATA_DIR / "tokenizer.json"
CHAT_TEMPLATE = DATA_DIR / "chat_template.jinja"
CORPUS_FILES = ("corpus_en.txt", "corpus_chat.txt", "corpus_intl.txt")

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)  # ids 0, 1, 2; skipped by skip_special_tokens
MARKUP_TOKENS = ("<tool_call>", "</tool_call>", "<think>", "</think>")  # added, not special (kept in text)
VOCAB_SIZE = 2000  # total, markup tokens included

# Qwen2's pre-tokenizer split: contractions, words, single digits, punctuation runs, whitespace.
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def corpus_lines() -> list[str]:
    """The shipped training text, line by line (newlines kept so they become tokens)."""
    lines: list[str] = []
    for name in CORPUS_FILES:
        lines.extend((DATA_DIR / name).read_text(encoding="utf-8").splitlines(keepends=True))
    return lines


def train_tokenizer(vocab_size: int = VOCAB_SIZE) -> Tokenizer:
    """Train the byte-level BPE on the shipped corpus (deterministic, well under a second)."""
    tok = Tokenizer(models.BPE(byte_fallback=False, fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(MARKUP_TOKENS),
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in MARKUP_TOKENS])
    return tok


def load_tokenizer() -> Tokenizer:
    """The shipped tokenizer."""
    return Tokenizer.from_file(str(TOKENIZER_JSON))


def chat_template() -> str:
    """The ChatML (Qwen2.5-style) template with system/user/assistant/tool messages and tools."""
    return CHAT_TEMPLATE.read_text(encoding="utf-8")


def write_tokenizer_files(out_dir: Path, model_max_length: int) -> Tokenizer:
    """Write tokenizer.json, tokenizer_config.json, special_tokens_map.json and chat_template.jinja."""
    out_dir = Path(out_dir)
    tok = load_tokenizer()
    (out_dir / "tokenizer.json").write_text(TOKENIZER_JSON.read_text(encoding="utf-8"), encoding="utf-8")
    template = chat_template()
    added = {
        str(tok.token_to_id(t)): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                  "single_word": False, "special": t in SPECIAL_TOKENS}
        for t in SPECIAL_TOKENS + MARKUP_TOKENS
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "additional_special_tokens": [IM_START, IM_END],
        "bos_token": None,
        "eos_token": IM_END,
        "pad_token": ENDOFTEXT,
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "split_special_tokens": False,
        "model_max_length": model_max_length,
        "chat_template": template,
    }
    _write_json(out_dir / "tokenizer_config.json", config)
    _write_json(out_dir / "special_tokens_map.json", {
        "additional_special_tokens": [IM_START, IM_END], "eos_token": IM_END, "pad_token": ENDOFTEXT})
    (out_dir / "chat_template.jinja").write_text(template, encoding="utf-8")
    return tok


def token_ids() -> dict[str, int]:
    """Ids of the special and markup tokens in the shipped tokenizer."""
    tok = load_tokenizer()
    return {t: tok.token_to_id(t) for t in SPECIAL_TOKENS + MARKUP_TOKENS}


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Retrain the tokenizer from the corpus and rewrite data/tokenizer.json."""
    tok = train_tokenizer()
    tok.save(str(TOKENIZER_JSON), pretty=True)
    print(f"wrote {TOKENIZER_JSON} (vocab {tok.get_vocab_size()})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
