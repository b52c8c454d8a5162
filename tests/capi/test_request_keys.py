"""A chat request through the C ABI with a key the runtime does not implement is refused, naming the key."""
import pytest

from pyimpl.capi.request_keys import check_chat_keys
from pyimpl.capi.status import ERR_INVALID_ARGUMENT, CapiError
from pyimpl.llm.frontend.protocols import parse_chat_request


def test_unknown_keys_are_invalid_argument_naming_them():
    with pytest.raises(CapiError) as info:
        check_chat_keys({"messages": [], "max_token": 4, "temprature": 1})
    assert info.value.status == ERR_INVALID_ARGUMENT
    assert '"max_token", "temprature"' in str(info.value)


def test_a_request_with_every_implemented_key_passes():
    """A full request with every implemented field passes the check and the parser alike."""
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "stream_options": {"include_usage": True}, "n": 2, "max_tokens": 4, "max_completion_tokens": 4,
            "min_tokens": 1, "stop": ["x"], "stop_token_ids": [1], "ignore_eos": False,
            "include_stop_str_in_output": False, "skip_special_tokens": True, "temperature": 1.0, "top_p": 0.9,
            "top_k": 5, "min_p": 0.1, "presence_penalty": 0.0, "frequency_penalty": 0.0, "repetition_penalty": 1.0,
            "seed": 3, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto",
            "response_format": {"type": "text"}, "logprobs": True, "top_logprobs": 2, "user": "u",
            "logit_bias": {"5": -100}}
    check_chat_keys(body)
    parse_chat_request(body)


def test_sampling_fields_no_engine_implements_are_refused_at_the_c_edge_too():
    """Issue 8's rule at the C edge: a sampling field the engines do not implement is an error naming it."""
    with pytest.raises(CapiError) as info:
        check_chat_keys({"model": "m", "messages": [], "best_of": 2})
    assert info.value.status == ERR_INVALID_ARGUMENT and '"best_of"' in str(info.value)
