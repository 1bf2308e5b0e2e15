"""The model analyzer's parts, in process, on tiny random-weight models of the real
architectures: loading, constrained output that fits the rule, batched == unbatched, the batch
split on out-of-memory, the token limit, and the grammar's narrowing transformations."""
from __future__ import annotations

import json
import random
import re
import shutil
import threading
from datetime import date, timedelta

import pytest
import torch

from docket.rules import DECISIONS, default_rules_dir, evaluate, load_rules
from tests.model_support import documents, settings, tiny_models  # noqa: F401  (fixture)
from worker.vlm.batcher import Batcher
from worker.vlm.engine import Engine, ModelOutOfMemory, interpret
from worker.vlm.loading import ModelUnavailable, check_folder, load
from worker.vlm.schema import VALID_DATE, cap_quantifiers, json_safe, output_schema, split_quantifiers

torch.set_num_threads(1)
RULES = load_rules(default_rules_dir())
RULE_NAMES = ["expense_policy", "contract_review", "screenshot_moderation", "expense_policy"]
_engines: dict = {}


def engine_for(path, **overrides) -> Engine:
    key = (str(path), tuple(sorted(overrides.items())))
    if key not in _engines:
        _engines[key] = Engine.load(settings(path, **overrides))
    return _engines[key]


def cel_only(rule, fields, document):
    return evaluate(rule, fields, {"text": document.text_layer, "pages": document.page_count,
                                   "mime_type": document.mime_type, "filename": ""})


@pytest.mark.parametrize("arch", ["glm46v", "glm4v", "qwen2_5_vl"])
def test_tiny_model_loads_through_the_auto_classes(tiny_models, arch):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_models[arch])
    assert config.model_type == arch
    loaded = load(tiny_models[arch], device="cpu")
    assert hasattr(loaded.processor, "image_processor") and loaded.processor.image_processor is not None
    assert type(loaded.model).__name__.endswith("ForConditionalGeneration")
    assert loaded.identity.startswith(f"{arch}@")
    assert loaded.tokenizer.padding_side == "left"
    prompt = engine_for(tiny_models[arch]).prepare(documents()[0], RULES["expense_policy"]).prompt
    if arch.startswith("glm"):  # thinking disabled the way GLM-4.6V's template does it
        assert prompt.startswith("[gMASK]<sop>") and prompt.endswith("<think></think>\n")
        assert "/nothink" in prompt and prompt.count("<|begin_of_image|>") == 1
    assert RULES["expense_policy"].prompt.strip()[:60] in prompt
    assert '"merchant_name"' in prompt  # the field schema is in the prompt


@pytest.mark.parametrize("arch", ["glm46v", "qwen2_5_vl"])
def test_constrained_answers_fit_each_rule(tiny_models, arch):
    engine = engine_for(tiny_models[arch])
    docs = documents()
    requests = [engine.prepare(d, RULES[n]) for d, n in zip(docs, RULE_NAMES)]
    for request, result, doc, name in zip(requests, engine.run(requests), docs, RULE_NAMES):
        rule = RULES[name]
        assert result.finished, result.text
        answer = json.loads(result.text, strict=False)
        assert set(answer) == {"fields", "decision", "reasons"} and answer["decision"] in DECISIONS
        outcome = interpret(result, request, rule, 320)
        errors = [e.message for e in rule.validator().iter_errors(outcome["fields"]) if e.validator != "required"]
        assert errors == [], (name, result.text)
        verdict = evaluate(rule, outcome["fields"], {"text": "", "pages": doc.page_count, "mime_type": doc.mime_type,
                                                     "filename": ""},
                           proposed=outcome["proposed"], proposed_reasons=outcome["reasons"])
        # The checks only ever make the model's proposal stricter.
        assert DECISIONS.index(verdict.decision) >= DECISIONS.index(outcome["proposed"])
        assert DECISIONS.index(verdict.decision) >= DECISIONS.index(cel_only(rule, outcome["fields"], doc).decision)


def test_uncapped_grammar_fits_the_rule_too(tiny_models):
    """The rule's own bounds (no decoding caps): still valid, the pattern fixes included."""
    engine = engine_for(tiny_models["glm46v"], max_string=0, max_items=0, max_new_tokens=1024)
    rule = RULES["expense_policy"]
    request = engine.prepare(documents()[0], rule)
    [result] = engine.run([request])
    assert result.finished
    fields = json.loads(result.text, strict=False)["fields"]
    assert list(rule.validator().iter_errors(fields)) == []
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields["transaction_date"])
    date.fromisoformat(fields["transaction_date"])  # format: date holds, not only the pattern


@pytest.mark.parametrize("arch", ["glm46v", "glm4v", "qwen2_5_vl"])
def test_batched_generation_equals_unbatched_greedy(tiny_models, arch):
    engine = engine_for(tiny_models[arch])
    requests = [engine.prepare(d, RULES[n]) for d, n in zip(documents(), RULE_NAMES)]
    alone = [engine.run([r])[0] for r in requests]
    together = engine.run(requests)
    assert [r.batch_size for r in together] == [4] * 4
    assert len({r.input_tokens for r in together}) > 1  # rows really were padded differently
    for a, b in zip(alone, together):
        assert a.token_ids == b.token_ids
        assert a.text == b.text


def test_out_of_memory_splits_the_batch_and_loses_nothing(tiny_models, monkeypatch):
    engine = engine_for(tiny_models["glm46v"])
    requests = [engine.prepare(d, RULES[n]) for d, n in zip(documents(), RULE_NAMES)]
    expected = [engine.run([r])[0].token_ids for r in requests]
    calls = []
    original = Engine._generate

    def generate(self, inputs, **kwargs):  # the model boundary: batches over 1 do not fit
        calls.append(int(inputs["input_ids"].shape[0]))
        if calls[-1] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return original(self, inputs, **kwargs)

    monkeypatch.setattr(Engine, "_generate", generate)
    results = engine.run_split(requests)
    assert calls == [4, 2, 1, 1, 2, 1, 1]
    assert [r.token_ids for r in results] == expected

    # A document that does not fit even alone fails alone; the others still succeed.
    def generate_big_first(self, inputs, **kwargs):
        if inputs["input_ids"].shape[0] > 1 or inputs["input_ids"].shape[1] == big_len:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return original(self, inputs, **kwargs)

    big_len = engine.loaded.processor(text=[requests[0].prompt], images=requests[0].images,
                                      return_tensors="pt")["input_ids"].shape[1]
    monkeypatch.setattr(Engine, "_generate", generate_big_first)
    results = engine.run_split(requests)
    assert isinstance(results[0], ModelOutOfMemory)
    assert [r.token_ids for r in results[1:]] == expected[1:]


def test_token_limit_means_needs_review_not_a_crash(tiny_models):
    engine = engine_for(tiny_models["glm46v"], max_new_tokens=6)
    rule = RULES["expense_policy"]
    doc = documents()[0]
    request = engine.prepare(doc, rule)
    [result] = engine.run([request])
    assert not result.finished and result.output_tokens == 6
    outcome = interpret(result, request, rule, 6)
    assert outcome["proposed"] == "needs_review" and outcome["fields"] == {}
    assert outcome["reasons"][0]["check"] == "model:token_limit"
    verdict = evaluate(rule, outcome["fields"], {"text": "", "pages": 1, "mime_type": "image/png", "filename": ""},
                       proposed=outcome["proposed"], proposed_reasons=outcome["reasons"])
    assert verdict.decision == "needs_review"
    assert {"model:token_limit", "required:total"} <= {r["check"] for r in verdict.reasons}


def test_missing_or_broken_model_folder_is_refused_with_the_reason(tiny_models, tmp_path):
    with pytest.raises(ModelUnavailable, match="not set"):
        check_folder(None)
    with pytest.raises(ModelUnavailable, match="does not exist"):
        check_folder(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_models["glm46v"], broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        load(broken, device="cpu")
    (broken / "model.safetensors").unlink()
    with pytest.raises(ModelUnavailable, match="no weights"):
        check_folder(broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelUnavailable, match="config.json"):
        check_folder(broken)


def test_batcher_gathers_concurrent_jobs_and_routes_each_result():
    seen = []

    def run_batch(requests):
        seen.append(list(requests))
        return [ValueError(f"bad {r}") if r == 3 else r * 10 for r in requests]

    batcher = Batcher(run_batch, max_batch=4, max_wait_s=0.3)
    results: dict = {}

    def job(n):
        try:
            results[n] = batcher.submit(n).result(timeout=10)[0]
        except ValueError as exc:
            results[n] = str(exc)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {0: 0, 1: 10, 2: 20, 3: "bad 3", 4: 40, 5: 50}
    assert 1 < max(len(b) for b in seen) <= 4  # gathered into batches of at most B
    assert sorted(r for b in seen for r in b) == list(range(6))  # each job exactly once


# ---- the grammar's transformations narrow (or keep) the rule's language -------------------

def test_split_quantifiers_keeps_the_language():
    rng = random.Random(0)
    for pattern in [r"^[a-c]{1,300}$", r"^x(ab){2,200}y$", r"^[^\x00-\x1f]{0,129}\d{1,3}$"]:
        split = split_quantifiers(pattern, limit=128)
        assert all(int(n) <= 128 for n in re.findall(r",(\d+)\}", split))
        for _ in range(300):
            n = rng.randint(0, 420)
            s = "".join(rng.choice("abcx9y") for _ in range(n))
            for candidate in (s, "x" + "ab" * rng.randint(0, 210) + "y", "a" * n):
                assert bool(re.fullmatch(pattern, candidate)) == bool(re.fullmatch(split, candidate)), candidate


def test_caps_and_json_safety_only_narrow():
    assert cap_quantifiers(r"^[^\x00-\x1f]{1,200}$", 24) == r"^[^\x00-\x1f]{1,24}$"
    assert cap_quantifiers(r"^\d{4}-\d{2}$", 2) == r"^\d{4}-\d{2}$"  # never below the minimum
    safe = json_safe(r"^[^\x00-\x1f]{1,20}.$")
    assert not re.fullmatch(safe, 'a"b') and not re.fullmatch(safe, "a\\b") and re.fullmatch(safe, "abc")


def test_valid_date_pattern_matches_the_format_checker():
    day = date(1, 1, 1)
    samples = [day + timedelta(days=d) for d in range(0, 3_652_000, 997)]
    samples += [date(2000, 2, 29), date(2024, 2, 29), date(1600, 2, 29)]
    for d in samples:
        assert re.fullmatch(VALID_DATE, d.isoformat()), d
    for bad in ["0000-01-01", "2023-02-29", "1900-02-29", "2024-04-31", "2024-13-01", "2024-00-10", "2024-01-32"]:
        assert not re.fullmatch(VALID_DATE, bad), bad


def test_every_shipped_rule_compiles_to_a_grammar(tiny_models):
    engine = engine_for(tiny_models["glm46v"], max_string=0, max_items=0)
    for rule in RULES.values():
        grammar = engine.grammars.get(output_schema(rule.fields_schema))
        assert grammar is engine.grammars.get(output_schema(rule.fields_schema))  # compiled once

