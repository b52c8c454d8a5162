"""Dispatch `python -m pyimpl.bench NAME ARGS...` to `pyimpl.bench.NAME.main(ARGS)`."""
import importlib
import os
import sys

# Before any benchmark imports torch (libgomp reads it once, at load): OpenMP threads that sleep at barriers
# instead of spinning. On cores shared with other processes a spinning thread burns the slice its partner needs;
# an engine decode step (hundreds of small parallel ops) then ran 3-10x slower with 2 threads than with 1.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

BENCHMARKS = ("runtime", "engine", "capi", "http", "gguf", "api-contract", "chaos", "router", "guided")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: python -m pyimpl.bench {{{'|'.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        return 2
    module = importlib.import_module(f"pyimpl.bench.{argv[0].replace('-', '_')}")
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
