"""`python -m pyimpl.frontend`: the OpenAI-compatible HTTP frontend as a process."""
