"""Time to decision for one receipt through `docket serve`, against raw rapidocr in the same run.

    .venv/bin/python bench/latency.py [--images DIR] [-n 0] [--workers 1] [--saturation-workers 0]

Starts `docket serve` (Postgres and Redis as for every pipeline bench, bench/stack.py) and
submits the development receipts one at a time with `Prefer: wait=60`, timing each from the
request to the decided job in the response (upload, storage, queue, page rendering, OCR,
extraction, rules, database, events). Raw rapidocr with its default settings (`RapidOCR()`, in
this process) reads the same image right before each submission, so both see the same machine
load. Then docs/s at saturation: every receipt submitted at once (4 clients per worker process)
to a `docket serve --workers N` with N the CPU count, as `docket worker` runs by default
(`--saturation-workers`, 0: the CPU count; -1 skips it).

Prints p50/p95 of both, wall and CPU (this process's CPU for raw), and a last line
`latency p50 X ms, p95 Y ms; raw rapidocr Z ms; ratio R` with R = p50 / raw p50 (lower is
better; goal ≤ 0.45, p95 ≤ 0.6 × raw). Default images: ../shared/data/sroie-dev/images.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.pipeline import pct, stop, wait_http  # noqa: E402
from bench.stack import BIN, bench_env  # noqa: E402
from tests import services  # noqa: E402


KEY: list[str] = []  # the submitter key of this run's database


def _serve(env: dict, workers: int) -> tuple[subprocess.Popen, str]:
    port = services.free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(BIN / "docket"), "serve", "--port", str(port), "--workers", str(workers)],
                              env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_http(url + "/healthz")
    except Exception:
        stop(server)
        raise
    return server, url


def _decide(url: str, path: Path, data: bytes) -> float:
    """Seconds from the POST to the decided job in its response."""
    started = time.perf_counter()
    resp = requests.post(url + "/v1/jobs", files={"file": (path.name, data)}, data={"rule": "expense_policy"},
                         headers={"Prefer": "wait=60", "Authorization": f"Bearer {KEY[0]}"}, timeout=90)
    elapsed = time.perf_counter() - started
    resp.raise_for_status()
    body = resp.json()
    if body.get("status") not in ("succeeded", "failed") or "decision" not in body:
        raise RuntimeError(f"{path.name}: not decided within the wait: {body.get('status')}")
    if body["status"] != "succeeded":
        raise RuntimeError(f"{path.name}: job failed: {body.get('error')}")
    return elapsed


def latency(env: dict, images: list[Path], workers: int) -> tuple[list[float], list[float], list[float]]:
    """(pipeline seconds, raw wall seconds, raw CPU seconds) per image, interleaved."""
    from rapidocr import RapidOCR

    raw = RapidOCR(params={"Global.log_level": "warning"})  # rapidocr's defaults, as the issue measures
    server, url = _serve(env, workers)
    try:
        raw(str(images[0]))
        _decide(url, images[0], images[0].read_bytes())  # warm-up: the worker loads its models
        piped, raw_wall, raw_cpu = [], [], []
        for path in images:
            data = path.read_bytes()
            wall, cpu = time.perf_counter(), time.process_time()
            raw(str(path))
            raw_wall.append(time.perf_counter() - wall)
            raw_cpu.append(time.process_time() - cpu)
            piped.append(_decide(url, path, data))
        return piped, raw_wall, raw_cpu
    finally:
        stop(server)


def saturation(env: dict, images: list[Path], workers: int) -> float:
    """Documents decided per second with every receipt submitted at once."""
    server, url = _serve(env, workers)
    try:
        with ThreadPoolExecutor(2 * workers) as warm:  # every worker process loads its models first
            list(warm.map(lambda p: _decide(url, p, p.read_bytes()), (images * 2)[:2 * workers]))
        payloads = [(p, p.read_bytes()) for p in images]
        started = time.perf_counter()
        with ThreadPoolExecutor(4 * workers) as pool:
            list(pool.map(lambda item: _decide(url, *item), payloads))
        return len(payloads) / (time.perf_counter() - started)
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "sroie-dev" / "images")
    parser.add_argument("-n", type=int, default=0, help="receipts to submit (0: all)")
    parser.add_argument("--workers", type=int, default=1, help="`docket serve --workers` for the latency runs "
                                                                "(default 1, as `docket serve`)")
    parser.add_argument("--saturation-workers", type=int, default=0,
                        help="worker processes for docs/s at saturation (0: the CPU count, -1: skip)")
    args = parser.parse_args()
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    images = images[: args.n] if args.n else images
    if not images:
        sys.exit(f"no images in {args.images}")
    load_before = os.getloadavg()[0]
    with bench_env() as env:
        KEY.append(subprocess.run([str(BIN / "docket"), "keys", "create", "--role", "submitter", "--tenant", "bench"],
                                  env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip())
        piped, raw_wall, raw_cpu = latency(env, images, args.workers)
        rate = None
        if args.saturation_workers >= 0:
            rate = saturation(env, images, args.saturation_workers or os.cpu_count() or 1)
    ms = lambda s: s * 1000  # noqa: E731
    p50, p95 = ms(statistics.median(piped)), ms(pct(piped, 95))
    raw50, raw95 = ms(statistics.median(raw_wall)), ms(pct(raw_wall, 95))
    print(f"images: {len(images)} from {args.images}; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after (1 min)")
    print(f"docket serve --workers {args.workers}, Prefer: wait, one at a time: p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
          f"mean {ms(statistics.mean(piped)):.0f} ms")
    print(f"raw RapidOCR() defaults, same images interleaved: p50 {raw50:.0f} ms, p95 {raw95:.0f} ms "
          f"(CPU p50 {ms(statistics.median(raw_cpu)):.0f} ms)")
    print(f"p95 / raw p50: {p95 / raw50:.2f}   (goal <= 0.6)")
    if rate is not None:
        print(f"saturation, docket serve --workers {args.saturation_workers or os.cpu_count()}: {rate:.2f} docs/s")
    print(f"latency p50 {p50:.0f} ms, p95 {p95:.0f} ms; raw rapidocr {raw50:.0f} ms; ratio {p50 / raw50:.2f}")


if __name__ == "__main__":
    main()
