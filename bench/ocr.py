"""Pipeline OCR cost against raw rapidocr on the same images, in the same run.

    .venv/bin/python bench/ocr.py [--images DIR] [-n 10]

Raw: `RapidOCR()(path)` in this process. Pipeline: each image submitted through the API to a
single worker (concurrency 1), one at a time, timed from job creation to decision (upload,
storage, queue, preprocessing, OCR, extraction, rules, database). Prints the mean time per
document for both and raw/pipeline (target ≥ 0.85). Default images: ../shared/data/sroie-dev.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.pipeline import BIN, stop, wait_http  # noqa: E402
from tests import services  # noqa: E402


def raw_ocr(images: list[Path]) -> list[float]:
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "warning"})
    engine(str(images[0]))  # warm-up, as the worker's first job is excluded too
    times = []
    for path in images:
        started = time.perf_counter()
        engine(str(path))
        times.append(time.perf_counter() - started)
    return times


def pipeline(images: list[Path]) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKET_")}
    env.update(DOCKET_DATA_DIR=tempfile.mkdtemp(), DOCKET_LOG_LEVEL="WARNING")
    port = services.free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(BIN / "docket"), "serve", "--port", str(port), "--workers", "1"], env=env,
                              cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        wait_http(url + "/healthz")
        times, stages = [], []
        for index, path in enumerate([images[0], *images]):
            resp = requests.post(url + "/v1/jobs", files={"file": (path.name, path.read_bytes())},
                                 data={"rule": "expense_policy"}, timeout=30)
            resp.raise_for_status()
            job_id = resp.json()["id"]
            while (body := requests.get(f"{url}/v1/jobs/{job_id}", timeout=5).json())["status"] not in (
                    "succeeded", "failed"):
                time.sleep(0.25)  # server-side timestamps are measured; polling must not steal the CPU
            if index == 0:
                continue  # warm-up: the worker loads the OCR models on its first job
            assert body["status"] == "succeeded", body
            from datetime import datetime

            created = datetime.fromisoformat(body["created_at"])
            finished = datetime.fromisoformat(body["finished_at"])
            times.append((finished - created).total_seconds())
            stages.append(body["timings"])
        for key in stages[0]:
            print(f"  pipeline stage {key:<14} mean {statistics.mean(s[key] for s in stages) * 1000:8.1f} ms")
        return times
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "sroie-dev" / "images")
    parser.add_argument("-n", type=int, default=10)
    args = parser.parse_args()
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.n]
    if not images:
        sys.exit(f"no images in {args.images}")
    raw = raw_ocr(images)
    piped = pipeline(images)
    raw_mean, pipe_mean = statistics.mean(raw), statistics.mean(piped)
    print(f"images: {len(images)} from {args.images}")
    print(f"raw rapidocr     : {raw_mean * 1000:8.1f} ms/doc (median {statistics.median(raw) * 1000:.1f})")
    print(f"docket pipeline  : {pipe_mean * 1000:8.1f} ms/doc (median {statistics.median(piped) * 1000:.1f})")
    print(f"ratio raw / pipeline: {raw_mean / pipe_mean:.2f}   (target >= 0.85)")


if __name__ == "__main__":
    main()
