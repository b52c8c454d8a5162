"""`python -m pyimpl.bench capi`: the C ABI's figures, measured by a C program compiled here.

(1) one dynamo_stream_poll of a queued chunk (ns, median), (2) chunks/s of a 100,000-chunk mock
stream consumed from C against the same stream consumed directly in Python (ratio: the median of
--rounds alternating C/Python measurements, default 3), (3) chunks/s
with 8 host threads, (4) p50/p99 produce->receive delay while Python is kept CPU-busy,
(5) how long a submission takes meanwhile (it is queued in C, never waits for the GIL),
(6) RSS after the first and the last of N dynamo_runtime_create/destroy cycles (--cycles, default 1,000;
a "{}" cycle loads the demo model: seconds each), (7) p50/p99 inter-chunk gaps of a running stream while
one 8 MiB chat request is submitted and handled.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGETS = {"poll_queued_ns_median": ("<=", 500.0), "c_over_python_ratio": (">=", 1.0),
           "busy_delay_p99_us": ("<=", 2000.0)}


def build_library(build_dir: Path) -> Path:
    """Configure and build libdynamo_llm_capi if needed; returns the library path."""
    cmake = shutil.which("cmake", path=str(Path(sys.executable).parent)) or "cmake"
    if not (build_dir / "CMakeCache.txt").exists():
        subprocess.run([cmake, "-S", str(REPO), "-B", str(build_dir), f"-DPython3_EXECUTABLE={sys.executable}"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run([cmake, "--build", str(build_dir), "--target", "dynamo_llm_capi", "-j2"], check=True,
                   stdout=subprocess.DEVNULL)
    return build_dir / "libdynamo_llm_capi.so"


def compile_bench(build_dir: Path, name: str = "bench_capi") -> Path:
    """Compile capi/bench/NAME.c against the library."""
    exe = build_dir / name
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-std=gnu11", f"-I{REPO / 'include'}", str(REPO / f"capi/bench/{name}.c"),
                    f"-L{build_dir}", "-ldynamo_llm_capi", f"-Wl,-rpath,{build_dir}", "-lpthread", "-o", str(exe)],
                   check=True)
    return exe


def run_json(exe: Path, *args: str) -> dict:
    """Run a bench program; its last stdout line is a JSON object of figures."""
    out = subprocess.run([str(exe), *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


async def python_chunks_per_s(n: int) -> float:
    """The same mock stream, consumed directly in Python through the runtime (mem + inproc)."""
    from pyimpl.capi.mock_endpoint import mock_stream
    from pyimpl.runtime import DistributedRuntime
    rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc")
    endpoint = rt.endpoint("bench.mock.stream")
    serving = asyncio.create_task(endpoint.serve_endpoint(mock_stream))
    client = await endpoint.client()
    await client.wait_for_instances(timeout=10)
    async for _ in await client.generate({"n": 1000}):
        pass
    start, count = time.perf_counter(), 0
    async for item in await client.generate({"n": n}):
        item.data()
        count += 1
    rate = count / (time.perf_counter() - start)
    serving.cancel()
    await rt.shutdown()
    return rate


def verdict(name: str, value: float) -> str:
    op, target = TARGETS[name]
    ok = value <= target if op == "<=" else value >= target
    return f"target {op} {target:g}: {'met' if ok else 'MISSED'}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyimpl.bench capi", description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--build-dir", type=Path, default=REPO / "build")
    parser.add_argument("--rounds", type=int, default=3,
                        help="(2) is measured this many times, C and Python alternating; its ratio is the median")
    parser.add_argument("--cycles", type=int, default=1000, help="create/destroy cycles of (6); 0 skips (6)")
    parser.add_argument("--cycle-config", default="{}", help="config_json of each cycle of (6)")
    parser.add_argument("--no-big", action="store_true", help="skip (7), the 8 MiB request")
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args(argv)
    build_library(args.build_dir)
    exe = compile_bench(args.build_dir)
    figures = run_json(exe, str(args.chunks))
    c_rates, py_rates = [figures["c_chunks_per_s"]], [asyncio.run(python_chunks_per_s(args.chunks))]
    for _ in range(args.rounds - 1):  # alternate, so a load change on a shared machine hits both sides
        c_rates.append(run_json(exe, str(args.chunks), "stream")["c_chunks_per_s"])
        py_rates.append(asyncio.run(python_chunks_per_s(args.chunks)))
    ratios = [c / p for c, p in zip(c_rates, py_rates)]
    figures["c_chunks_per_s"] = round(statistics.median(c_rates))
    figures["python_chunks_per_s"] = round(statistics.median(py_rates))
    figures["c_over_python_ratio"] = round(statistics.median(ratios), 3)
    figures["c_over_python_ratios"] = [round(r, 3) for r in ratios]
    if args.cycles > 0:
        cycles = run_json(compile_bench(args.build_dir, "bench_capi_cycles"), str(args.cycles), args.cycle_config)
        figures.update({f"cycles_{k}" if k != "cycles" else k: v for k, v in cycles.items()})
    if not args.no_big:
        figures.update(run_json(compile_bench(args.build_dir, "bench_capi_big")))
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"(1) poll of a queued chunk: {figures['poll_queued_ns_median']:.0f} ns median   "
          f"[{verdict('poll_queued_ns_median', figures['poll_queued_ns_median'])}]")
    print(f"(2) {args.chunks} chunks: C {figures['c_chunks_per_s']:,.0f}/s, Python {figures['python_chunks_per_s']:,.0f}/s,"
          f" ratio {figures['c_over_python_ratio']:.2f}x (median of {len(ratios)} rounds:"
          f" {', '.join(f'{r:.2f}' for r in ratios)})   [{verdict('c_over_python_ratio', figures['c_over_python_ratio'])}]")
    print(f"(3) 8 host threads: {figures['c_8_threads_chunks_per_s']:,.0f} chunks/s")
    print(f"(4) delay while Python is CPU-busy: p50 {figures['busy_delay_p50_us']:.0f} us, "
          f"p99 {figures['busy_delay_p99_us']:.0f} us over {figures['busy_delay_samples']} chunks   "
          f"[{verdict('busy_delay_p99_us', figures['busy_delay_p99_us'])}]")
    print(f"(5) dynamo_generate while Python is CPU-busy: p99 {figures['busy_submit_p99_us']:.1f} us (queued in C)")
    if args.cycles > 0:
        print(f"(6) {figures['cycles']} create/destroy cycles ({args.cycle_config}): RSS first {figures['cycles_rss_first_mb']:.0f} MB,"
              f" last {figures['cycles_rss_last_mb']:.0f} MB, peak {figures['cycles_rss_peak_mb']:.0f} MB,"
              f" {figures['cycles_s_per_cycle']:.2f} s/cycle")
    if not args.no_big:
        print(f"(7) 8 MiB request beside a running stream: its gaps p50 {figures['gap_during_p50_ms']:.1f} ms,"
              f" p99 {figures['gap_during_p99_ms']:.1f} ms, max {figures['gap_during_max_ms']:.1f} ms"
              f" (before: p50 {figures['gap_before_p50_ms']:.1f}, p99 {figures['gap_before_p99_ms']:.1f});"
              f" the request answered in {figures['big_first_response_ms']:.0f} ms ({figures['big_status']})")
    print(json.dumps(figures))
    return 0
