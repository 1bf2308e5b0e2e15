"""Batched generation on the model analyzer's engine: documents per second and p50/p95 latency
at batch sizes B = 1, 4, 8, 16, with ratios against B = 1 measured in the same run.

    .venv/bin/python bench/vlm.py MODEL_DIR [-n 32] [--new-tokens 64] [--batches 1,4,8,16]
    .venv/bin/python bench/vlm.py --tiny glm46v          # builds a tiny random-weight model first
    .venv/bin/python bench/vlm.py --real-dims glm46v     # random weights, GLM-4.6V-Flash's real sizes (GPU!)

Each document: a receipt-sized page image (scaled to DOCKET_MODEL_MAX_PIXELS, default 512x512),
the expense_policy prompt and field schema, exactly the prompt the worker builds. Work per
document is fixed: `--new-tokens` tokens are generated for every document (min = max new
tokens, no grammar), since speed does not depend on the weights' values. `--constrained`
decodes under the rule's grammar instead (variable length: the real path, for regressions).
Latency of a document = the wall time of the generate() call that carried it (service time;
queueing in front of the worker is not included). One warm-up batch per B is not counted.

CPU numbers with tiny models are for regressions only: a tiny model on 2 cores says nothing
about a GPU's throughput. Report GPU numbers with the device that produced them.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def real_dims_model(out: Path, arch: str) -> Path:
    """GLM-4.6V-Flash's (GLM-4.1V-9B's) real dimensions with random weights, the tiny tokenizer
    (vocab size kept at the real 151552 so the embedding and head cost what they cost)."""
    import torch
    from transformers import AutoModelForImageTextToText

    from docket import tiny_models

    tiny_models.build(out, arch)  # tokenizer, processor, template
    from transformers import AutoConfig

    small = AutoConfig.from_pretrained(out)
    config = type(small)(
        text_config=dict(vocab_size=151552, eos_token_id=small.text_config.eos_token_id,
                         pad_token_id=small.text_config.pad_token_id,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                          "partial_rotary_factor": 0.5, "mrope_section": [8, 12, 12]}),
        vision_config={}, image_token_id=small.image_token_id, video_token_id=small.video_token_id,
        image_start_token_id=small.image_start_token_id, image_end_token_id=small.image_end_token_id,
        video_start_token_id=small.video_start_token_id, video_end_token_id=small.video_end_token_id)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    model = model.to_empty(device="cuda" if torch.cuda.is_available() else "cpu").to(torch.bfloat16)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    model.generation_config = AutoModelForImageTextToText.from_pretrained(out).generation_config
    model.save_pretrained(out)
    from worker.vlm.loading import load_processor

    processor = load_processor(out, config)
    processor.image_processor.size = {"shortest_edge": 112 * 112, "longest_edge": 2 * 512 * 512}
    processor.image_processor.save_pretrained(out)
    return out


def documents(n: int):
    from PIL import Image, ImageDraw

    from docket.pages import Page, PreparedDocument

    docs = []
    for i in range(n):
        image = Image.new("RGB", (720, 960), "white")
        draw = ImageDraw.Draw(image)
        for line in range(30):
            draw.text((40, 30 + line * 30), f"ITEM {i}-{line}  ........  RM {line * 3 + i}.50", fill="black")
        docs.append(PreparedDocument("image/png", [Page(image)], 1))
    return docs


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", type=Path, help="model folder")
    parser.add_argument("--tiny", choices=["glm46v", "glm4v", "qwen2_5_vl"], help="build a tiny model and use it")
    parser.add_argument("--real-dims", choices=["glm46v", "glm4v"], help="random weights at the real model's size")
    parser.add_argument("-n", type=int, default=32, help="documents per batch size")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batches", default="1,4,8,16")
    parser.add_argument("--constrained", action="store_true", help="decode under the rule's grammar")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (CPU runs)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from docket.config import ModelSettings
    from docket.rules import default_rules_dir, load_rules
    from worker.vlm.engine import Engine

    tmp = tempfile.TemporaryDirectory()
    folder = args.model
    if args.tiny:
        from docket.tiny_models import build

        folder = build(Path(tmp.name) / args.tiny, args.tiny)
    elif args.real_dims:
        folder = real_dims_model(Path(tmp.name) / args.real_dims, args.real_dims)
    if folder is None:
        parser.error("give a model folder, --tiny ARCH or --real-dims ARCH")
    base = ModelSettings.from_env()
    settings = ModelSettings(**{**base.__dict__, "path": Path(folder), "device": args.device, "dtype": args.dtype,
                                "max_new_tokens": args.new_tokens})
    engine = Engine.load(settings)
    rule = load_rules(default_rules_dir())["expense_policy"]
    requests = [engine.prepare(d, rule) for d in documents(args.n)]
    kwargs = {"constrained": True} if args.constrained else {"constrained": False, "min_new_tokens": args.new_tokens}
    print(f"model {engine.identity} on {engine.loaded.device} ({engine.loaded.model.dtype}); {args.n} documents, "
          f"{'grammar-constrained' if args.constrained else f'{args.new_tokens} new tokens each'}; "
          f"prompt {requests[0].prompt.count(chr(10)) + 1} lines, "
          f"{engine.run(requests[:1], **kwargs)[0].input_tokens} input tokens")
    rows = []
    for size in [int(b) for b in args.batches.split(",")]:
        engine.run(requests[:size], **kwargs)  # warm-up
        latencies, tokens = [], 0
        started = time.perf_counter()
        for i in range(0, len(requests), size):
            chunk = requests[i:i + size]
            t0 = time.perf_counter()
            results = engine.run(chunk, **kwargs)
            latencies += [time.perf_counter() - t0] * len(chunk)
            tokens += sum(r.output_tokens for r in results)
        total = time.perf_counter() - started
        rows.append((size, len(requests) / total, pct(latencies, 0.5), pct(latencies, 0.95), tokens / total))
    base_rate, base_p50 = rows[0][1], rows[0][2]
    print(f"{'B':>3} {'docs/s':>9} {'p50 s':>8} {'p95 s':>8} {'tok/s':>9} {'docs/s vs B=1':>14} {'p50 vs B=1':>11}")
    for size, rate, p50, p95, tps in rows:
        print(f"{size:>3} {rate:>9.2f} {p50:>8.3f} {p95:>8.3f} {tps:>9.1f} {rate / base_rate:>14.2f} "
              f"{p50 / base_p50:>11.2f}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
