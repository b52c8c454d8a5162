"""dynamo_runtime_create's config: defaults, distributed defaults, unknown keys and wrong types refused."""
import pytest

from pyimpl.capi.config import EmbeddedConfig, parse_config
from pyimpl.capi.status import ERR_INVALID_ARGUMENT, CapiError


def test_empty_and_null_are_the_embedded_default(deployment_env):
    for text in (None, "", "{}"):
        assert parse_config(text) == EmbeddedConfig()


def test_distributed_joins_without_serving_a_model(deployment_env):
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


@pytest.fixture
def deployment_env(monkeypatch):
    """A clean deployment environment; tests set the DYN_* variables they need."""
    for name in ("DYN_DISCOVERY_BACKEND", "DYN_REQUEST_PLANE", "NATS_SERVER", "DYN_FILE_KV", "DYN_MIGRATION_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_dyn_variables_fill_what_the_json_leaves_out(deployment_env):
    deployment_env.setenv("DYN_DISCOVERY_BACKEND", "NATS")
    config = parse_config("{}")
    assert (config.discovery, config.request_plane, config.serve_model) == ("nats", "nats", False)
    deployment_env.setenv("DYN_DISCOVERY_BACKEND", "file")
    deployment_env.setenv("DYN_REQUEST_PLANE", "nats")
    config = parse_config('{"model": "/m"}')
    assert (config.discovery, config.request_plane, config.serve_model) == ("file", "nats", True)


def test_the_json_wins_over_dyn_variables(deployment_env):
    deployment_env.setenv("DYN_DISCOVERY_BACKEND", "file")
    deployment_env.setenv("DYN_REQUEST_PLANE", "tcp")
    assert parse_config('{"discovery": "mem", "request_plane": "inproc"}') == EmbeddedConfig()


@pytest.mark.parametrize("env, word", [
    ({"DYN_DISCOVERY_BACKEND": "zookeeper"}, "DYN_DISCOVERY_BACKEND must be one of"),
    ({"DYN_REQUEST_PLANE": "carrier-pigeon"}, "DYN_REQUEST_PLANE must be one of"),
    ({"DYN_DISCOVERY_BACKEND": "file", "DYN_REQUEST_PLANE": "inproc"}, "DYN_REQUEST_PLANE \"inproc\" only works"),
])
def test_bad_dyn_variables_are_named(deployment_env, env, word):
    for name, value in env.items():
        deployment_env.setenv(name, value)
    with pytest.raises(CapiError) as info:
        parse_config("{}")
    assert info.value.status == ERR_INVALID_ARGUMENT and word in str(info.value)


def test_migration_limit_from_the_json_else_dyn_migration_limit_else_3(deployment_env):
    assert parse_config("{}").migration_limit == 3
    assert parse_config('{"migration_limit": 0}').migration_limit == 0
    deployment_env.setenv("DYN_MIGRATION_LIMIT", "5")
    assert parse_config("{}").migration_limit == 5
    assert parse_config('{"migration_limit": 1}').migration_limit == 1


@pytest.mark.parametrize("text", ['{"migration_limit": -1}', '{"migration_limit": true}', '{"migration_limit": 1.5}',
                                  '{"migration_limit": "2"}'])
def test_bad_migration_limits_are_refused(deployment_env, text):
    with pytest.raises(CapiError) as info:
        parse_config(text)
    assert info.value.status == ERR_INVALID_ARGUMENT
    assert 'key "migration_limit" must be a whole number >= 0' in str(info.value)


def test_a_bad_dyn_migration_limit_is_named(deployment_env):
    deployment_env.setenv("DYN_MIGRATION_LIMIT", "lots")
    with pytest.raises(CapiError) as info:
        parse_config("{}")
    assert info.value.status == ERR_INVALID_ARGUMENT and "DYN_MIGRATION_LIMIT" in str(info.value)
