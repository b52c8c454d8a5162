"""Constrained decoding through llguidance: `guided_decoding` wire requests (json_object, json_schema, tool calls)
become grammars (grammars.py) enforced by a per-request logits processor (processor.py) on the engine's hook.

The engine knows nothing of grammars: the worker hands it a GrammarLogitsProcessor per request.
"""
from pyimpl.llm.backend.guided.grammars import TOOL_CALL_FORMATS, grammar_for
from pyimpl.llm.backend.guided.processor import GrammarLogitsProcessor, GuidedTokenizer

__all__ = ["TOOL_CALL_FORMATS", "GrammarLogitsProcessor", "GuidedTokenizer", "grammar_for"]
