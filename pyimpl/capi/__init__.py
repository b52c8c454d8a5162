"""Python side of the C ABI: config parsing, runtime sessions, the loop thread that fills C stream queues."""
import os

# Before the engine loads torch in the embedded interpreter (libgomp reads it once): OpenMP threads sleep at
# barriers instead of spinning, unless the host process set it (pyimpl.bench and the worker do the same).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
