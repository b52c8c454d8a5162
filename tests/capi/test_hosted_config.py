"""config_json's "models" / "max_loaded_models" (multi-model hosting): parsed into HostedModels, and every
malformed entry is a DYNAMO_ERR_INVALID_ARGUMENT naming what is wrong."""
import pytest

from pyimpl.capi.config import parse_config
from pyimpl.capi.status import ERR_INVALID_ARGUMENT, CapiError
from pyimpl.llm.frontend.model_host import HostedModel


def test_models_parsed():
    config = parse_config('{"models": [{"name": "a", "path": "/m/a", "aliases": ["x"], "params": {"top_k": 5}},'
                          ' {"name": "b", "path": "/m/b"}], "max_loaded_models": 2}')
    assert config.models == [HostedModel("a", "/m/a", ("x",), {"top_k": 5}), HostedModel("b", "/m/b")]
    assert config.max_loaded_models == 2 and config.serve_model is False


@pytest.mark.parametrize("text, says", [
    ('{"models": []}', "non-empty array"),
    ('{"models": {"a": 1}}', "must be an array"),
    ('{"models": [{"name": "a"}]}', '"name" and a "path"'),
    ('{"models": [{"name": "a", "path": "/p", "size": 1}]}', "unknown keys ['size']"),
    ('{"models": [{"name": "a", "path": "/p", "aliases": "b"}]}', '["aliases"] must be an array'),
    ('{"models": [{"name": "a", "path": "/p"}, {"name": "b", "path": "/q", "aliases": ["a"]}]}', "more than once"),
    ('{"models": [{"name": "a", "path": "/p"}], "model": "/q"}', 'replaces "model"'),
    ('{"models": [{"name": "a", "path": "/p"}], "max_loaded_models": 0}', "at least 1"),
])
def test_bad_models(text, says):
    with pytest.raises(CapiError) as error:
        parse_config(text)
    assert error.value.status == ERR_INVALID_ARGUMENT and says in str(error.value)
