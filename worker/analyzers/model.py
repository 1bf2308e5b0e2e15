"""The `model` analyzer: a vision-language model (GLM-4.6V-Flash in production; any
`AutoModelForImageTextToText` model folder) reads the page images with the rule's prompt and
answers with fields, a proposed decision and reasons, decoded under the rule's JSON Schema.

Loaded once per worker process (at worker start by `docket worker --queues gpu`, else on the
first job); jobs running concurrently in the process share one batcher, so their generations
run as one padded batch (see worker/vlm/batcher.py). Importing this module is cheap: torch and
transformers are imported only when the model loads.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout

from docket.config import Settings
from docket.errors import DocumentError
from docket.pages import PreparedDocument
from docket.queues import GPU_QUEUE
from docket.rules import Rule
from worker.analyzers import register
from worker.analyzers.base import Analysis


@register
class ModelAnalyzer:
    name = "model"
    queue = GPU_QUEUE

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self._lock = threading.Lock()
        self._engine = None
        self._batcher = None
        self._failure: str | None = None

    def load(self):
        """Load the model and start the batcher (idempotent). Raises ModelUnavailable."""
        from worker.vlm.batcher import Batcher
        from worker.vlm.engine import Engine
        from worker.vlm.loading import ModelUnavailable

        with self._lock:
            if self._engine is None:
                if self._failure is not None:
                    raise ModelUnavailable(self._failure)
                try:
                    engine = Engine.load(self.settings.model)
                except ModelUnavailable as exc:
                    self._failure = str(exc)  # do not retry a broken folder on every job
                    raise
                self._batcher = Batcher(engine.run_split, max_batch=self.settings.model.batch_size,
                                        max_wait_s=self.settings.model.batch_wait_ms / 1000)
                self._engine = engine
            return self._engine

    @property
    def batcher(self):
        return self._batcher

    def analyze(self, document: PreparedDocument, rule: Rule) -> Analysis:
        from celery.exceptions import SoftTimeLimitExceeded

        from worker.vlm.engine import ModelOutOfMemory, interpret
        from worker.vlm.loading import ModelUnavailable

        try:
            engine = self.load()
        except ModelUnavailable as exc:
            raise DocumentError(str(exc), code="model_unavailable") from None
        started = time.perf_counter()
        request = engine.prepare(document, rule)
        prepare_s = time.perf_counter() - started
        future = self._batcher.submit(request)
        # The thread pool has no time limits of its own: bound the wait here.
        try:
            result, wait_s = future.result(timeout=self.settings.task_soft_time_limit)
        except FutureTimeout:
            raise SoftTimeLimitExceeded() from None
        except ModelOutOfMemory as exc:
            raise DocumentError(str(exc), code="model_out_of_memory") from None
        outcome = interpret(result, request, rule, self.settings.model.max_new_tokens)
        fields = outcome["fields"]
        sources = {name: "model" for name in fields}
        # Token probabilities of each value (worker/vlm/confidence.py); the rule's certainty reads them.
        probabilities = engine.field_confidence(result)
        confidence = {name: probabilities[name] for name in fields if name in probabilities}
        if rule.document_type == "receipt":
            # An e-invoice's own data (OFD, CII/UBL XML, a ZUGFeRD PDF's attachment) is exact:
            # it wins over what the model read from the page, where the rule has the field.
            from worker.extract.expense import structured

            data = structured(document)
            known = rule.fields_schema.get("properties", {})
            for name, value in (data.fields.items() if data else ()):
                if name in known:
                    fields[name], sources[name], confidence[name] = value, "embedded_xml", 1.0
        text = document.text_layer or (fields.get("text") if isinstance(fields.get("text"), str) else "")
        extra = {
            "model": engine.identity,
            "prompt_sha256": request.prompt_sha256,
            "raw_output": result.text,
            "finished": result.finished,
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "max_new_tokens": self.settings.model.max_new_tokens,
            "batch_size": result.batch_size,
            "proposed": outcome["proposed"],
            "model_reasons": outcome["model_reasons"],
            "images": [list(image.size) for image in request.images],
        }
        return Analysis(
            fields=fields,
            confidence=confidence,
            sources=sources,
            text=text,
            proposed=outcome["proposed"],
            proposed_reasons=outcome["reasons"],
            model=engine.identity,
            timings={"prepare_prompt_s": round(prepare_s, 4), "batch_wait_s": round(wait_s, 4),
                     "generate_s": round(result.generate_s, 4), "batch_size": result.batch_size,
                     "input_tokens": result.input_tokens, "output_tokens": result.output_tokens},
            extra=extra,
        )
