"""POST /tokenize and /detokenize in vLLM's shapes: the served model's own tokenizer and chat template,
so a client can count a prompt's tokens (and check it against `max_model_len`) without generating."""
from __future__ import annotations

from typing import TYPE_CHECKING, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pyimpl.llm.errors import InvalidRequestError, ModelNotFoundError, ServingError
from pyimpl.llm.frontend.http.responses import error_response, json_response
from pyimpl.llm.frontend.protocol_types import DetokenizeRequest, TokenizeRequest
from pyimpl.llm.frontend.protocols import decode_body

if TYPE_CHECKING:
    from pyimpl.llm.frontend.model_manager import ModelManager, ServedModelEntry
    from pyimpl.llm.text.preprocessor import Preprocessor


def tokenization_routes(manager: Callable[[], ModelManager], body: Callable[[Request], Awaitable[dict]]) -> list[Route]:
    """The two routes; `manager()` is the frontend's model manager (it may be set after the routes are built),
    `body(request)` checks auth and size and decodes the JSON body (errors are ServingErrors)."""

    def route(path: str, answer: Callable[[ModelManager, dict], Awaitable[dict]]) -> Route:
        async def handle(request: Request) -> Response:
            try:
                return json_response(await answer(manager(), await body(request)))
            except ServingError as err:
                return error_response(err)
        return Route(path, handle, methods=["POST"])

    return [route("/tokenize", tokenize_body), route("/detokenize", detokenize_body)]


async def _model(manager: ModelManager, body: dict, name: str | None) -> tuple[ServedModelEntry, Preprocessor]:
    """The served model a request names (an alias resolves to its model), or the only one when it names none."""
    if name is None:
        names = manager.model_names()
        if len(names) != 1:
            raise InvalidRequestError(f"'model' is required when {len(names)} models are served", "model")
        name = names[0]
    alias = manager.aliases.get(name)
    if alias is not None:
        name = alias.model
    entry = manager.models.get(name)
    if entry is None:
        raise ModelNotFoundError(f"The model '{name}' does not exist")
    if entry.card.model_type == "embedding" and body.get("messages") is not None:
        raise InvalidRequestError(f"The model '{name}' does not serve chat requests", "messages")
    return entry, await manager.preprocessor(entry.card)


async def tokenize_body(manager: ModelManager, body: dict) -> dict:
    """The /tokenize answer: {count, max_model_len, tokens[, token_strs]}; 400 naming the field otherwise."""
    req = decode_body(body, TokenizeRequest)
    if (req.prompt is None) == (req.messages is None):
        raise InvalidRequestError("give exactly one of 'prompt' or 'messages'", "prompt")
    entry, pre = await _model(manager, body, req.model)
    limit = entry.card.context_length
    try:
        if req.messages is not None:
            if not pre.has_chat_template:
                raise InvalidRequestError(f"The model '{entry.card.name}' has no chat template; "
                                          "tokenize a 'prompt' instead", "messages")
            text = pre.render_chat(body["messages"], tools=body.get("tools"),
                                   add_generation_prompt=req.add_generation_prompt is not False)
            tokens = pre.tokenize(text, add_special_tokens=req.add_special_tokens is True)
        else:
            tokens = pre.tokenize(req.prompt, add_special_tokens=req.add_special_tokens is not False)
    except ValueError as exc:   # a message the template rejects
        raise InvalidRequestError(str(exc), "messages") from exc
    answer = {"count": len(tokens), "max_model_len": limit, "tokens": list(tokens)}
    if req.return_token_strs:
        answer["token_strs"] = pre.tokenizer.convert_ids_to_tokens(list(tokens))
    return answer


async def detokenize_body(manager: ModelManager, body: dict) -> dict:
    """The /detokenize answer: {prompt}; ids outside the model's vocabulary are a 400 naming `tokens`."""
    req = decode_body(body, DetokenizeRequest)
    _, pre = await _model(manager, body, req.model)
    vocab = len(pre.tokenizer)
    bad = [t for t in req.tokens if t >= vocab]
    if bad:
        raise InvalidRequestError(f"token id {bad[0]} is outside the model's vocabulary of {vocab}", "tokens")
    return {"prompt": pre.decode(req.tokens, skip_special_tokens=False)}
