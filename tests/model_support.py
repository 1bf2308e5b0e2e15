"""Helpers for the model analyzer tests: documents, settings, and the fault hook.

Importing this module in a worker (DOCKET_EXTRA_ANALYZERS=tests.model_support) with
DOCKET_TEST_OOM_LOG set replaces the one boundary into the model, Engine._generate, so that any
batch of more than one document raises torch.cuda.OutOfMemoryError; every call's batch size is
appended to the log file. Nothing else is faked.
"""
from __future__ import annotations

import os

from PIL import Image, ImageDraw

from docket.config import ModelSettings
from docket.pages import Page, PreparedDocument

# Small decoding caps keep random-weight answers short on 2 CPU cores (the grammar is still
# the rule's schema, only narrower); max_new_tokens leaves room to finish.
FAST = dict(max_new_tokens=320, max_string=24, max_items=3, batch_size=4, batch_wait_ms=200, max_pixels=128 * 128)
FAST_ENV = {"DOCKET_MODEL_MAX_NEW_TOKENS": "320", "DOCKET_MODEL_MAX_STRING": "24", "DOCKET_MODEL_MAX_ITEMS": "3",
            "DOCKET_MODEL_BATCH_SIZE": "4", "DOCKET_MODEL_BATCH_WAIT_MS": "1500",
            "DOCKET_MODEL_MAX_PIXELS": str(128 * 128)}


def settings(path, **overrides) -> ModelSettings:
    return ModelSettings(path=path, device="cpu", dtype="float32", **{**FAST, **overrides})


def page(width: int, height: int, seed: int, text: str = "") -> Page:
    image = Image.new("RGB", (width, height), (seed * 53 % 256, seed * 97 % 256, 200))
    draw = ImageDraw.Draw(image)
    draw.text((5, 5), f"TOTAL RM {seed}.50", fill="black")
    draw.rectangle((seed % 40, 20, seed % 40 + 30, 50), fill=(seed * 31 % 256, 0, 0))
    return Page(image, text)


def documents() -> list[PreparedDocument]:
    """Different sizes, page counts and text layers, so padded rows differ."""
    return [
        PreparedDocument("image/png", [page(600, 200, 1)], 1),
        PreparedDocument("application/pdf", [page(200, 280, 2, "Invoice 42\nTotal 10.00"), page(200, 280, 3)], 2),
        PreparedDocument("image/png", [page(90, 400, 4)], 1),
        PreparedDocument("image/jpeg", [page(300, 300, 5)], 1),
    ]


def _install_oom_hook() -> None:
    import torch

    from worker.vlm import engine

    log_path = os.environ["DOCKET_TEST_OOM_LOG"]
    original = engine.Engine._generate

    def generate(self, inputs, **kwargs):
        rows = int(inputs["input_ids"].shape[0])
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"{rows}\n")
        if rows > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected by tests.model_support)")
        return original(self, inputs, **kwargs)

    engine.Engine._generate = generate


if os.environ.get("DOCKET_TEST_OOM_LOG"):
    _install_oom_hook()


try:
    import pytest
except ImportError:  # imported by a worker without the test tools
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="session")
    def tiny_models(tmp_path_factory) -> dict:
        """Tiny random-weight models of the real architectures, built once per test session."""
        import torch

        from docket.tiny_models import ARCHES, build

        torch.set_num_threads(1)
        root = tmp_path_factory.mktemp("models")
        return {arch: build(root / arch, arch) for arch in ARCHES}
