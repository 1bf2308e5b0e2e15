"""Tiny random-weight vision-language models of the real architectures, built locally.

For tests and CI (no hub access): `docket model tiny OUT_DIR --arch glm46v` writes a folder
that `AutoConfig` / `AutoProcessor` / `AutoModelForImageTextToText` load like a real checkpoint
(config, safetensors weights, a byte-level BPE tokenizer with the architecture's special tokens,
the image processor, the processor config and a chat template in the model's own format).
The weights are random: the output is gibberish, but shapes, token plumbing, image placeholders,
padding and generation behave like the real model's code path. ~200k parameters, < 1 MB.

Architectures: `glm46v` (GLM-4.6V-Flash), `glm4v` (GLM-4.1V), `qwen2_5_vl` (Qwen2.5-VL).
"""
from __future__ import annotations

import json
from pathlib import Path

ARCHES = ("glm46v", "glm4v", "qwen2_5_vl")

# Text a tiny BPE is trained on: JSON punctuation, digits, receipt and policy words.
_CORPUS = [
    '{"fields": {"merchant_name": "KEDAI BUKU", "total": 32.50, "currency": "MYR"}, '
    '"decision": "approve", "reasons": ["total within limits"]}',
    '{"parties": ["Acme Corp", "Beta LLC"], "effective_date": "2026-01-31", "jurisdiction": "Delaware"}',
    "You are reading a receipt or invoice submitted with a staff expense claim. Extract the total, "
    "the date, the merchant name and the items. Propose needs_review when unsure; reject when over the limit.",
    "contract review: parties, term in months, amounts, governing law, liability, indemnity, termination.",
    "screenshot moderation: personal data, phone, email, bank card, resident id, text as printed.",
    "0123456789 -+.,:;()[]{}<>/\\ abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 2024-03-05 RM 12.00",
]

_GLM_SPECIALS = ["<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>",
                 "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>", "<|image|>",
                 "<|begin_of_video|>", "<|end_of_video|>", "<|video|>", "<think>", "</think>"]
_QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]

# GLM-4.x V chat format: [gMASK]<sop><|role|>\ncontent...; images as begin/image/end triples.
# With enable_thinking=False the user turn ends with /nothink and the answer starts after an
# empty <think></think> (as GLM-4.6V-Flash's own template renders it).
GLM_CHAT_TEMPLATE = (
    "[gMASK]<sop>"
    "{%- for m in messages -%}"
    "<|{{ m.role }}|>{{ '\\n' }}"
    "{%- if m.content is string -%}{{ m.content }}"
    "{%- else -%}{%- for p in m.content -%}"
    "{%- if p.type == 'image' -%}<|begin_of_image|><|image|><|end_of_image|>"
    "{%- elif p.type == 'text' -%}{{ p.text }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- if m.role == 'user' and enable_thinking is defined and not enable_thinking -%}/nothink{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>"
    "{%- if enable_thinking is defined and not enable_thinking -%}{{ '\\n' }}<think></think>{{ '\\n' }}{%- endif -%}"
    "{%- endif -%}"
)

QWEN_CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "<|im_start|>{{ m.role }}{{ '\\n' }}"
    "{%- if m.content is string -%}{{ m.content }}"
    "{%- else -%}{%- for p in m.content -%}"
    "{%- if p.type == 'image' -%}<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif p.type == 'text' -%}{{ p.text }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "<|im_end|>{{ '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant{{ '\\n' }}{%- endif -%}"
)


def _tokenizer(specials: list[str], eos: str, pad: str, chat_template: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    bpe.train_from_iterator(_CORPUS * 4, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=eos, pad_token=pad, padding_side="left",
                                  additional_special_tokens=[s for s in specials if s not in (eos, pad)])
    tok.chat_template = chat_template
    return tok


def _vocab_size(tok) -> int:
    return (len(tok) + 63) // 64 * 64  # padded like real checkpoints (ids beyond the tokenizer exist)


def _glm(arch: str, tok):
    from transformers import Glm4vConfig, Glm46VConfig

    ids = {t: tok.convert_tokens_to_ids(t) for t in _GLM_SPECIALS}
    text = dict(vocab_size=_vocab_size(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                # mrope_section sums to head_dim * partial_rotary_factor / 2 = 16 * 0.5 / 2
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                                 "mrope_section": [1, 1, 2]},
                eos_token_id=[ids["<|endoftext|>"], ids["<|user|>"], ids["<|observation|>"]],
                pad_token_id=ids["<|endoftext|>"])
    vision = dict(depth=2, hidden_size=32, num_heads=2, intermediate_size=64, out_hidden_size=64,
                  patch_size=14, spatial_merge_size=2, temporal_patch_size=2, image_size=112)
    cls = Glm46VConfig if arch == "glm46v" else Glm4vConfig
    return cls(text_config=text, vision_config=vision, image_token_id=ids["<|image|>"],
               video_token_id=ids["<|video|>"], image_start_token_id=ids["<|begin_of_image|>"],
               image_end_token_id=ids["<|end_of_image|>"], video_start_token_id=ids["<|begin_of_video|>"],
               video_end_token_id=ids["<|end_of_video|>"], tie_word_embeddings=False)


def _qwen(tok):
    from transformers import Qwen2_5_VLConfig

    ids = {t: tok.convert_tokens_to_ids(t) for t in _QWEN_SPECIALS}
    text = dict(vocab_size=_vocab_size(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                # mrope_section sums to head_dim / 2 = 8
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]], pad_token_id=ids["<|endoftext|>"],
                bos_token_id=None)
    vision = dict(depth=2, hidden_size=32, num_heads=2, intermediate_size=64, out_hidden_size=64, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[1])
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                            video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                            vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=False)


# Small images: 28x28 pixels per merged token; at most 16 merged tokens per page in tiny models.
_MIN_PIXELS = 28 * 28 * 4
_MAX_PIXELS = 28 * 28 * 16


def _image_processor(arch: str):
    if arch in ("glm46v", "glm4v"):
        from transformers.models.glm46v.image_processing_pil_glm46v import Glm46VImageProcessorPil
        from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil

        cls = Glm46VImageProcessorPil if arch == "glm46v" else Glm4vImageProcessorPil
        # GLM compares temporal_patch_size * h * w with longest_edge: double the budget.
        return cls(size={"shortest_edge": _MIN_PIXELS, "longest_edge": 2 * _MAX_PIXELS},
                   patch_size=14, temporal_patch_size=2, merge_size=2)
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(size={"shortest_edge": _MIN_PIXELS, "longest_edge": _MAX_PIXELS},
                                    patch_size=14, temporal_patch_size=2, merge_size=2)


PROCESSOR_CLASS = {"glm46v": "Glm46VProcessor", "glm4v": "Glm4vProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor"}


def build(out_dir: str | Path, arch: str = "glm46v", *, seed: int = 0) -> Path:
    """Write a tiny random-weight model of `arch` to `out_dir`; returns the folder."""
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    if arch not in ARCHES:
        raise ValueError(f"unknown architecture {arch!r}; one of {', '.join(ARCHES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if arch in ("glm46v", "glm4v"):
        tok = _tokenizer(_GLM_SPECIALS, "<|endoftext|>", "<|endoftext|>", GLM_CHAT_TEMPLATE)
        config = _glm(arch, tok)
    else:
        tok = _tokenizer(_QWEN_SPECIALS, "<|im_end|>", "<|endoftext|>", QWEN_CHAT_TEMPLATE)
        config = _qwen(tok)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    eos = config.text_config.eos_token_id
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=config.text_config.pad_token_id,
                                               do_sample=False)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    image_processor = _image_processor(arch)
    image_processor.save_pretrained(out)
    (out / "chat_template.jinja").write_text(tok.chat_template, encoding="utf-8")
    # The stock processor class name, so AutoProcessor builds the real processor (where
    # torchvision is present) and Docket's loader knows which one to build without it.
    (out / "processor_config.json").write_text(json.dumps({"processor_class": PROCESSOR_CLASS[arch]}, indent=2),
                                               encoding="utf-8")
    return out
