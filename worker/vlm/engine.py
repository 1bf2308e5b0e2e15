"""One loaded model, turning prepared documents into constrained JSON answers — one padded
`generate()` per batch.

* :meth:`Engine.prepare` (CPU, per job): page images scaled to the pixel budget, the chat
  prompt (rule prompt, field schema, optional PDF text layer, thinking disabled), its hash.
* :meth:`Engine.run` (GPU, per batch): left-padded inputs, one xgrammar logits processor with a
  grammar per row (rows may use different rules), greedy decoding, per-row decode and token
  counts; a row without an end-of-sequence token hit ``max_new_tokens``.
* :meth:`Engine.run_split`: CUDA out of memory on a batch → empty the cache, split the batch in
  halves and run each (recursively); only a single document that does not fit fails. Any other
  error on a batch → each document is retried alone, so one bad document fails alone.

`Engine._generate` is the one boundary tests replace to inject faults (out of memory).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from docket.config import ModelSettings
from docket.rules import Rule
from docket.pages import PreparedDocument
from worker.vlm.confidence import TokenProbabilities, confidence_of
from worker.vlm.loading import LoadedModel, load
from worker.vlm.schema import GrammarCache, output_schema, repair

log = logging.getLogger(__name__)

MAX_REASONS = 3
REASON_CHARS = 120


class ModelOutOfMemory(Exception):
    """Even alone, this document does not fit in the accelerator's memory."""

    code = "model_out_of_memory"


def out_of_memory_errors() -> tuple[type[BaseException], ...]:
    import torch

    return (torch.cuda.OutOfMemoryError,)


@dataclass
class Request:
    prompt: str
    images: list
    schema: dict
    prompt_sha256: str
    rule: str


@dataclass
class Result:
    text: str
    finished: bool  # False: max_new_tokens reached before the end-of-sequence token
    input_tokens: int
    output_tokens: int
    batch_size: int
    generate_s: float
    token_ids: list[int] = field(default_factory=list)
    #: Per token of token_ids: its probability among what the grammar allowed (worker/vlm/confidence.py).
    token_probabilities: list[float] = field(default_factory=list)


def fit_pixels(image, max_pixels: int):
    """Scale an image down (aspect kept) so width * height <= max_pixels."""
    from PIL import Image

    w, h = image.size
    if max_pixels <= 0 or w * h <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (w * h))
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return image.resize(size, Image.BICUBIC)


def instructions(rule: Rule, document: PreparedDocument, text_layer_chars: int) -> str:
    fields_schema = json.dumps(rule.fields_schema, ensure_ascii=False, separators=(",", ":"))
    parts = [
        rule.prompt.strip(),
        "",
        f"The document has {document.page_count} page(s); the page images follow in order"
        + (f" (the first {len(document.pages)} are shown)." if len(document.pages) < document.page_count else "."),
    ]
    if rule.default_currency:
        parts.append(f"The rule's default currency is {rule.default_currency}.")
    text = document.text_layer.strip() if text_layer_chars > 0 else ""
    if text:
        clipped = text[:text_layer_chars]
        parts += ["", "Text layer of the PDF" + (" (truncated)" if len(clipped) < len(text) else "") + ":",
                  '"""', clipped, '"""']
    parts += [
        "",
        "Answer with one JSON object and nothing else:",
        '{"fields": <the fields>, "decision": "approve" | "needs_review" | "reject", '
        f'"reasons": [at most {MAX_REASONS} short reasons for the decision]}}',
        f"The fields follow this JSON Schema: {fields_schema}",
    ]
    return "\n".join(parts)


class Engine:
    def __init__(self, loaded: LoadedModel, settings: ModelSettings):
        self.loaded = loaded
        self.settings = settings
        text_config = getattr(loaded.config, "text_config", loaded.config)
        self.grammars = GrammarCache(loaded.tokenizer, text_config.vocab_size, loaded.eos_token_ids,
                                     max_string=settings.max_string, max_items=settings.max_items)
        template = loaded.processor.chat_template
        self._thinking_switch = isinstance(template, str) and "enable_thinking" in template

    @classmethod
    def load(cls, settings: ModelSettings) -> "Engine":
        loaded = load(settings.path, device=settings.device, dtype=settings.dtype,
                      attn_implementation=settings.attn_implementation)
        log.info("model %s loaded on %s", loaded.identity, loaded.device)
        return cls(loaded, settings)

    @property
    def identity(self) -> str:
        return self.loaded.identity

    # ---- per job (CPU) ----------------------------------------------------------------
    def prepare(self, document: PreparedDocument, rule: Rule) -> Request:
        budget = self.settings.pixels_for(rule.name)
        images = [fit_pixels(p.image, budget) for p in document.pages[: self.settings.max_pages]]
        shown = PreparedDocument(mime_type=document.mime_type, pages=document.pages[: len(images)],
                                 page_count=document.page_count, filename=document.filename)
        content: list[dict] = [{"type": "image"} for _ in images]
        content.append({"type": "text", "text": instructions(rule, shown, self.settings.text_layer_chars)})
        kwargs = {"enable_thinking": False} if self._thinking_switch else {}
        prompt = self.loaded.processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                          add_generation_prompt=True, **kwargs)
        schema = output_schema(rule.fields_schema, max_reasons=MAX_REASONS, reason_chars=REASON_CHARS)
        digest = hashlib.sha256(prompt.encode("utf-8"))
        for image in images:
            digest.update(f"{image.size}".encode())
            digest.update(image.tobytes())
        return Request(prompt=prompt, images=images, schema=schema, prompt_sha256=digest.hexdigest(), rule=rule.name)

    # ---- per batch (GPU) --------------------------------------------------------------
    def _generate(self, inputs, **kwargs):
        """The only call into the model's generate(): tests replace it to inject faults."""
        return self.loaded.model.generate(**inputs, **kwargs)

    def run(self, requests: list[Request], *, max_new_tokens: int | None = None, constrained: bool = True,
            min_new_tokens: int | None = None) -> list[Result]:
        """One padded generate() for the batch. `constrained=False` and `min_new_tokens` are for
        the benchmark only (a fixed amount of work per document)."""
        import torch

        processor = self.loaded.processor
        images = [image for r in requests for image in r.images]
        inputs = processor(text=[r.prompt for r in requests], images=images or None, padding=True,
                           return_tensors="pt")
        inputs = inputs.to(self.loaded.device)
        limit = max_new_tokens or self.settings.max_new_tokens
        kwargs: dict[str, Any] = {"max_new_tokens": limit, "do_sample": False,
                                  "pad_token_id": self.loaded.tokenizer.pad_token_id}
        recorder = TokenProbabilities()  # last: it sees the grammar's mask
        processors = [self.grammars.processor([self.grammars.get(r.schema) for r in requests])] if constrained else []
        kwargs["logits_processor"] = [*processors, recorder]
        if min_new_tokens:
            kwargs["min_new_tokens"] = min_new_tokens
        started = time.perf_counter()
        with torch.inference_mode():
            out = self._generate(inputs, **kwargs)
        sequences = out.sequences if hasattr(out, "sequences") else out
        if self.loaded.device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        prompt_len = inputs["input_ids"].shape[1]
        eos = set(self.loaded.eos_token_ids)
        results = []
        for row, request in enumerate(requests):
            generated = sequences[row, prompt_len:].tolist()
            end = next((i for i, t in enumerate(generated) if t in eos), None)
            tokens = generated if end is None else generated[:end]
            text = self.loaded.tokenizer.decode(tokens, skip_special_tokens=True)
            results.append(Result(text=text, finished=end is not None,
                                  input_tokens=int(inputs["attention_mask"][row].sum()), output_tokens=len(tokens),
                                  batch_size=len(requests), generate_s=elapsed, token_ids=tokens,
                                  token_probabilities=recorder.row(row, len(tokens))))
        return results

    def field_confidence(self, result: Result) -> dict[str, float]:
        """Per field of the answer: the probability the model gave to its value's tokens."""
        return confidence_of(result, lambda ids: self.loaded.tokenizer.decode(ids, skip_special_tokens=True))

    def run_split(self, requests: list[Request], **kwargs) -> list[Result | BaseException]:
        """Like run(), never raising: each item is its Result or the exception for that job."""
        if not requests:
            return []
        try:
            return list(self.run(requests, **kwargs))
        except out_of_memory_errors() as exc:
            self._free_memory()
            if len(requests) == 1:
                return [ModelOutOfMemory(f"out of accelerator memory even for this document alone: {exc}")]
            half = len(requests) // 2
            log.warning("out of memory on a batch of %d: splitting into %d + %d", len(requests), half,
                        len(requests) - half)
            return self.run_split(requests[:half], **kwargs) + self.run_split(requests[half:], **kwargs)
        except Exception as exc:
            if len(requests) == 1:
                return [exc]
            log.exception("a batch of %d failed; running its documents one by one", len(requests))
            return [item for r in requests for item in self.run_split([r], **kwargs)]

    def _free_memory(self) -> None:
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def interpret(result: Result, request: Request, rule: Rule, max_new_tokens: int) -> dict[str, Any]:
    """From the model's text to fields, a proposed decision and reasons (never raises)."""
    proposed, reasons, fields, model_reasons = "needs_review", [], {}, []
    parsed = None
    if not result.finished:
        reasons.append({"check": "model:token_limit", "outcome": "needs_review",
                        "message": f"the model's answer was cut off at {max_new_tokens} new tokens; "
                                   "fields may be missing"})
    try:
        parsed = json.loads(result.text, strict=False)  # strict=False: raw tabs/newlines in strings
    except ValueError as exc:
        if result.finished:
            reasons.append({"check": "model:invalid_output", "outcome": "needs_review",
                            "message": f"the model's answer is not valid JSON: {exc}"})
    if isinstance(parsed, dict):
        fields_schema = request.schema["properties"]["fields"]
        fields = repair(parsed.get("fields"), fields_schema) if isinstance(parsed.get("fields"), dict) else {}
        decision = parsed.get("decision")
        model_reasons = [r for r in parsed.get("reasons") or [] if isinstance(r, str)][:MAX_REASONS]
        if result.finished and decision in ("approve", "needs_review", "reject"):
            proposed = decision
            if decision != "approve":
                messages = model_reasons or ["the model proposed this without giving a reason"]
                reasons += [{"check": "model", "outcome": decision, "message": m} for m in messages]
    if proposed == "needs_review" and not reasons:
        reasons.append({"check": "model", "outcome": "needs_review", "message": "the model gave no usable answer"})
    return {"fields": fields, "proposed": proposed, "reasons": reasons, "model_reasons": model_reasons}
