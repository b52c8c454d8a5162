"""The OpenAI-compatible HTTP frontend (Starlette app, SSE streaming, metrics)."""
