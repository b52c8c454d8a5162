"""The keys a chat request through the C ABI may carry: those the runtime implements. The header
promises that any other key is an error (a typo such as "max_token" must not be silently ignored)."""
from __future__ import annotations

from pyimpl.capi.status import ERR_INVALID_ARGUMENT, CapiError

CHAT_KEYS = frozenset({
    "model", "messages", "stream", "stream_options", "n", "max_tokens", "max_completion_tokens", "min_tokens",
    "stop", "stop_token_ids", "ignore_eos", "include_stop_str_in_output", "skip_special_tokens",
    "temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty",
    "seed", "tools", "tool_choice", "response_format", "logprobs", "top_logprobs", "logit_bias",
    "user",  # OpenAI's end-user id: accepted, carries no behaviour
})


def check_chat_keys(request: dict) -> None:
    """Raise CapiError(DYNAMO_ERR_INVALID_ARGUMENT) naming the first unknown key of a chat request."""
    unknown = sorted(key for key in request if key not in CHAT_KEYS)
    if unknown:
        names = ", ".join(f'"{key}"' for key in unknown)
        raise CapiError(ERR_INVALID_ARGUMENT, f"The chat request has unknown key{'s' if len(unknown) > 1 else ''} "
                                              f"{names}; known keys are {', '.join(sorted(CHAT_KEYS))}.")
