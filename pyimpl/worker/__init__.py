"""`python -m pyimpl.worker`: serve one model over the runtime as a process."""
