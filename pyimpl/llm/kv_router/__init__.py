"""KV-aware routing: which worker already holds a request's prefix in its KV cache (no HTTP or C knowledge)."""
