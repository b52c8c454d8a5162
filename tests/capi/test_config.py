"""dynamo_runtime_create's config: defaults, distributed defaults, unknown keys and wrong types refused."""
import pytest

from pyimpl.capi.config import EmbeddedConfig, parse_config
from pyimpl.capi.status import ERR_INVALID_ARGUMENT, CapiError


def test_empty_and_null_are_the_embedded_default():
    for text in (None, "", "{}"):
        assert parse_config(text) == EmbeddedConfig()


def test_distributed_joins_without_serving_a_model():
    config = parse_config('{"discovery": "nats", "nats_url": "nats://127.0.0.1:4222"}')
    assert (config.discovery, config.request_plane, config.serve_model) == ("nats", "nats", False)
    config = parse_config('{"discovery": "file", "model": "/m"}')
    assert (config.request_plane, config.serve_model) == ("tcp", True)


@pytest.mark.parametrize("text, word", [
    ('{"bogus": 1}', "bogus"),
    ('{"serve_model": "yes"}', "serve_model"),
    ('{"discovery": "zookeeper"}', "discovery"),
    ('{"engine": "vllm"}', "engine"),
    ('{"mock_endpoint": "a.b"}', "mock_endpoint"),
    ("[1]", "object"),
    ("{", "JSON"),
])
def test_bad_configs_are_invalid_argument(text, word):
    with pytest.raises(CapiError) as info:
        parse_config(text)
    assert info.value.status == ERR_INVALID_ARGUMENT
    assert word in str(info.value)


def test_config_messages_name_the_key_in_a_sentence():
    with pytest.raises(CapiError) as info:
        parse_config('{"bogus": 1, "serve_model": false}')
    assert str(info.value).startswith('config_json has unknown key "bogus" (known keys: ')
    assert "Error" not in str(info.value)
