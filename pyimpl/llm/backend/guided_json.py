"""Constrained decoding for `response_format: {"type": "json_object"}`: a JSON-prefix validator and a logits processor.

The engine knows nothing of JSON: the worker hands it a `JsonObjectLogitsProcessor` as a per-request logits hook.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

MAX_CONSECUTIVE_WHITESPACE = 6  # between tokens of the document; stops endless-whitespace loops
DEFAULT_TOP_CANDIDATES = 16  # tokens kept per step (the best-scoring ones that keep the text valid)
_FIRST_LOOK = 256  # candidates examined before falling back to a scan of the whole vocabulary

_WHITESPACE = " \t\n\r"
_HEX = "0123456789abcdefABCDEF"
_ESCAPES = '"\\/bfnrt'
_LITERALS = {"t": "rue", "f": "alse", "n": "ull"}

# modes of the automaton
START, DONE = "start", "done"
VALUE, ARRAY_FIRST, OBJECT_FIRST, OBJECT_KEY, COLON, AFTER_VALUE = "value", "array0", "object0", "key", ":", "after"
STRING, ESCAPE, UNICODE, LITERAL = "string", "escape", "unicode", "literal"
# number sub-states: which part was last read
MINUS, ZERO, INT, DOT, FRACTION, EXP, EXP_SIGN, EXP_DIGITS = "-", "0", "int", ".", "frac", "e", "e+", "edigits"
_NUMBER_MODES = {MINUS, ZERO, INT, DOT, FRACTION, EXP, EXP_SIGN, EXP_DIGITS}
_NUMBER_ENDS = {ZERO, INT, FRACTION, EXP_DIGITS}  # a number may stop here
_WHITESPACE_MODES = {START, VALUE, ARRAY_FIRST, OBJECT_FIRST, OBJECT_KEY, COLON, AFTER_VALUE}


@dataclass
class JsonPrefixState:
    """Where a character-level pushdown automaton stands in a JSON text whose top level must be an object."""

    mode: str = START
    stack: list[str] = field(default_factory=list)  # open containers, "{" or "["
    is_key: bool = False  # the string being read is an object key
    pending: str = ""  # rest of a literal, or hex digits left in a \\u escape (as a count string)
    whitespace: int = 0  # consecutive whitespace characters just read

    def copy(self) -> "JsonPrefixState":
        return JsonPrefixState(self.mode, list(self.stack), self.is_key, self.pending, self.whitespace)

    @property
    def done(self) -> bool:
        """The top-level object is closed: only end of text may follow."""
        return self.mode == DONE

    def feed(self, text: str) -> bool:
        """Advance over `text` in place; False (state then undefined) when the text stops being a JSON prefix."""
        return all(self._char(ch) for ch in text)

    def _char(self, ch: str) -> bool:
        mode = self.mode
        if mode == STRING:
            if ch == '"':
                self.mode = COLON if self.is_key else AFTER_VALUE
            elif ch == "\\":
                self.mode = ESCAPE
            elif ch < " ":
                return False  # control characters must be escaped
            return True
        if mode == ESCAPE:
            if ch == "u":
                self.mode, self.pending = UNICODE, "4"
                return True
            self.mode = STRING
            return ch in _ESCAPES
        if mode == UNICODE:
            if ch not in _HEX:
                return False
            left = int(self.pending) - 1
            self.mode, self.pending = (STRING, "") if left == 0 else (UNICODE, str(left))
            return True
        if mode == LITERAL:
            if ch != self.pending[0]:
                return False
            self.pending = self.pending[1:]
            if not self.pending:
                self.mode = AFTER_VALUE
            return True
        if mode in _NUMBER_MODES:
            if self._number_char(ch):
                return True
            if mode not in _NUMBER_ENDS:
                return False
            self.mode = AFTER_VALUE  # the number ended; this character belongs to what follows
            return self._char(ch)
        if ch in _WHITESPACE:
            if mode not in _WHITESPACE_MODES or self.whitespace >= MAX_CONSECUTIVE_WHITESPACE:
                return False
            self.whitespace += 1
            return True
        self.whitespace = 0
        return self._structural(mode, ch)

    def _structural(self, mode: str, ch: str) -> bool:
        if mode == START:
            if ch != "{":
                return False
            self.stack.append("{")
            self.mode = OBJECT_FIRST
            return True
        if mode in (OBJECT_FIRST, OBJECT_KEY):
            if ch == '"':
                self.mode, self.is_key = STRING, True
                return True
            return mode == OBJECT_FIRST and ch == "}" and self._close("{")
        if mode == COLON:
            if ch != ":":
                return False
            self.mode = VALUE
            return True
        if mode == AFTER_VALUE:
            if ch == ",":
                self.mode = OBJECT_KEY if self.stack[-1] == "{" else VALUE
                return True
            return ch in "}]" and self._close("{" if ch == "}" else "[")
        if mode == ARRAY_FIRST and ch == "]":
            return self._close("[")
        if mode in (VALUE, ARRAY_FIRST):
            return self._value_start(ch)
        return False  # DONE: nothing may follow the top-level object

    def _value_start(self, ch: str) -> bool:
        if ch in "{[":
            self.stack.append(ch)
            self.mode = OBJECT_FIRST if ch == "{" else ARRAY_FIRST
        elif ch == '"':
            self.mode, self.is_key = STRING, False
        elif ch in _LITERALS:
            self.mode, self.pending = LITERAL, _LITERALS[ch]
        elif ch == "-":
            self.mode = MINUS
        elif ch == "0":
            self.mode = ZERO
        elif "1" <= ch <= "9":
            self.mode = INT
        else:
            return False
        return True

    def _close(self, opener: str) -> bool:
        if not self.stack or self.stack[-1] != opener:
            return False
        self.stack.pop()
        self.mode = AFTER_VALUE if self.stack else DONE
        return True

    def _number_char(self, ch: str) -> bool:
        """Consume `ch` as part of the current number if the grammar allows it there."""
        mode, digit = self.mode, "0" <= ch <= "9"
        if mode == MINUS and digit:
            self.mode = ZERO if ch == "0" else INT
        elif mode in (INT, FRACTION, EXP_DIGITS) and digit:
            pass
        elif mode in (ZERO, INT) and ch == ".":
            self.mode = DOT
        elif mode == DOT and digit:
            self.mode = FRACTION
        elif mode in (ZERO, INT, FRACTION) and ch in "eE":
            self.mode = EXP
        elif mode == EXP and ch in "+-":
            self.mode = EXP_SIGN
        elif mode in (EXP, EXP_SIGN) and digit:
            self.mode = EXP_DIGITS
        else:
            return False
        return True


def is_json_object_prefix(text: str) -> bool:
    """Whether `text` can be extended into a JSON object (whitespace runs limited as while decoding)."""
    return JsonPrefixState().feed(text)


_TOKEN_TEXTS: "weakref.WeakKeyDictionary[Any, list[str | None]]" = weakref.WeakKeyDictionary()


def token_texts(tokenizer: Any) -> list[str | None]:
    """Each token id's text (None for special tokens and partial UTF-8 pieces); computed once per tokenizer."""
    cached = _TOKEN_TEXTS.get(tokenizer)
    if cached is None:
        special = set(tokenizer.all_special_ids)
        texts: list[str | None] = []
        for token_id, token in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
            text = None if token_id in special or token is None else tokenizer.convert_tokens_to_string([token])
            texts.append(text if text and "\ufffd" not in text else None)
        cached = _TOKEN_TEXTS[tokenizer] = texts
    return cached


class JsonObjectLogitsProcessor:
    """Masks every token that would make the generated text stop being a JSON-object prefix; EOS only once closed.

    Keeps the `top_candidates` best valid tokens per step, checked in descending logit order (the first is usually
    valid), so a step costs a few automaton runs rather than a vocabulary scan.
    """

    def __init__(self, texts: Sequence[str | None], eos_token_ids: Sequence[int],
                 top_candidates: int = DEFAULT_TOP_CANDIDATES) -> None:
        self.texts, self.eos_token_ids, self.top_candidates = texts, list(eos_token_ids), top_candidates
        self._ids: list[int] = []  # generated ids `_state` has consumed
        self._state: JsonPrefixState | None = JsonPrefixState()  # None: the text already left the grammar

    def __call__(self, generated_token_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        state = self._sync(generated_token_ids)
        if state is None or state.done:
            allowed = [t for t in self.eos_token_ids if t < logits.shape[-1]]
        else:
            allowed = self._allowed(state, logits)
        masked = torch.full_like(logits, float("-inf"))
        if allowed:
            index = torch.tensor(allowed, dtype=torch.long, device=logits.device)
            masked.index_copy_(0, index, logits.index_select(0, index))
        return masked

    def _sync(self, generated: list[int]) -> JsonPrefixState | None:
        """The state after `generated` (restarting if it is not a continuation of what was seen last)."""
        n = len(self._ids)
        if len(generated) < n or generated[:n] != self._ids:
            self._ids, self._state, n = [], JsonPrefixState(), 0
        for token_id in generated[n:]:
            text = self.texts[token_id] if token_id < len(self.texts) else None
            if self._state is not None and (text is None or not self._state.feed(text)):
                self._state = None
            self._ids.append(token_id)
        return self._state

    def _allowed(self, state: JsonPrefixState, logits: torch.Tensor) -> list[int]:
        vocab = min(logits.shape[-1], len(self.texts))
        first = min(_FIRST_LOOK, vocab)
        order = torch.topk(logits[:vocab], first).indices.tolist()
        allowed = self._first_valid(state, order)
        if not allowed and first < vocab:
            allowed = self._first_valid(state, torch.argsort(logits[:vocab], descending=True)[first:].tolist())
        return allowed

    def _first_valid(self, state: JsonPrefixState, candidates: list[int]) -> list[int]:
        allowed: list[int] = []
        for token_id in candidates:
            text = self.texts[token_id]
            if text is not None and state.copy().feed(text):
                allowed.append(token_id)
                if len(allowed) >= self.top_candidates:
                    break
        return allowed


def json_object_processor(tokenizer: Any, eos_token_ids: Sequence[int],
                          top_candidates: int = DEFAULT_TOP_CANDIDATES) -> JsonObjectLogitsProcessor:
    """A fresh processor (one per request: it is stateful) over `tokenizer`'s cached token texts."""
    return JsonObjectLogitsProcessor(token_texts(tokenizer), eos_token_ids, top_candidates)
