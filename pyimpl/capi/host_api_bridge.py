"""The extern "Python" entry points of the host API (capi/src/host_text.c, log_callback.c): host calls
answered through this thread's owned result, and the log routing. Installed by bridge.install."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from pyimpl.capi import host_calls
from pyimpl.capi.host_calls import Answer, HostCalls
from pyimpl.capi.log_bridge import LogBridge
from pyimpl.capi.session import RuntimeSession
from pyimpl.capi.status import ERR_INTERNAL, OK
from pyimpl.llm.frontend.model_host import ModelState


def check_ops(lib: Any) -> None:
    """Fail at library start if the DYN_OP_* values of dyn_internal.h and host_calls disagree."""
    names = ("TOKENIZE", "DETOKENIZE", "CHAT_TEMPLATE", "MODEL_INFO", "EMBEDDINGS", "CHAT_SYNC")
    drift = [n for n in names if getattr(lib, f"DYN_OP_{n}") != getattr(host_calls, f"OP_{n}")]
    if drift:
        raise RuntimeError(f"pyimpl.capi.host_calls disagrees with dyn_internal.h on {drift}")


class ModelStates:
    """Hands a hosted model's state changes to C's dyn_model_state_emit, in order, from one thread of its own
    (not the loop: the host's callback may call blocking dynamo_* functions that need the loop)."""

    def __init__(self, lib: Any):
        self.lib = lib
        self.codes = {state: getattr(lib, f"DYNAMO_MODEL_{state.name}") for state in ModelState}
        self.executor: ThreadPoolExecutor | None = None

    def session_started(self, runtime: int, session: RuntimeSession) -> None:
        """Report the states of a runtime's hosted models (if it has any)."""
        from pyimpl.llm.frontend.hosting_manager import HostingModelManager
        if not isinstance(session.models, HostingModelManager):
            return
        if self.executor is None:
            self.executor = ThreadPoolExecutor(1, thread_name_prefix="dynamo-model-states")
        emit, code = self.lib.dyn_model_state_emit, self.codes

        def listener(name: str, state: ModelState, message: str | None) -> None:
            self.executor.submit(emit, runtime, name.encode(), code[state], (message or "").encode(errors="replace"))
        session.models.host.listeners.append(listener)


def install_host_api(ffi: Any, lib: Any, calls: HostCalls, fail: Callable[[BaseException], int]) -> ModelStates:
    """Define dyn_py_host_call and dyn_py_log_config; apply a log callback the host set before Python started.
    Returns what reports hosted models' states to C (session_started after each runtime's creation)."""
    check_ops(lib)

    def hand_over(answer: Answer) -> None:
        if answer.embeddings is not None:
            floats, count, dims, tokens, model = answer.embeddings
            lib.dyn_set_embeddings(ffi.from_buffer("float[]", floats), count, dims, tokens, model.encode())
            return
        if answer.info is not None:
            info = answer.info
            eos = [i for i in info["eos_token_ids"] if 0 <= i < 1 << 32]
            lib.dyn_set_model_info(info["context_length"] or 0, info["vocab_size"] or 0, eos, len(eos),
                                   info["kv_block_size"] or 0, info["kv_total_blocks"] or 0,
                                   int(info["model_type"] == "embedding"), info["name"].encode(),
                                   (info["architecture"] or "").encode(), (info["dtype"] or "").encode())
        lib.dyn_set_owned_result(answer.data, len(answer.data))

    @ffi.def_extern(error=ERR_INTERNAL)
    def dyn_py_host_call(runtime, op, model, arg, arg_len, flag):
        try:
            answer = calls.run(runtime, op, ffi.string(model).decode(), ffi.unpack(arg, arg_len), bool(flag))
            hand_over(answer)
            return OK
        except BaseException as exc:
            return fail(exc)

    bridge = LogBridge(lambda level, logger, message: lib.dyn_log_emit(
        level, logger.encode(errors="replace"), message.encode(errors="replace")))

    @ffi.def_extern(error=ERR_INTERNAL)
    def dyn_py_log_config(enabled, level):
        try:
            bridge.configure(bool(enabled), level)
            return OK
        except BaseException as exc:
            return fail(exc)

    level = ffi.new("int32_t*")
    if lib.dyn_log_wanted(level):
        bridge.configure(True, level[0])
    return ModelStates(lib)
