"""Loading a vision-language model folder: config, processor, weights — once per process.

`AutoProcessor` insists on a video processor for GLM-4.xV and Qwen2/2.5-VL, and video
processors need torchvision (which cannot be installed beside the CPU torch here, and is often
absent on slim GPU images). Without it, :func:`load_processor` builds the model's own processor
class with the PIL image processor and no video slot: images and text behave the same.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ModelUnavailable(Exception):
    """The model folder is missing, incomplete or unloadable. The message says which and why."""

    code = "model_unavailable"


DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass
class LoadedModel:
    path: Path
    model: Any
    processor: Any
    tokenizer: Any
    config: Any
    device: str
    identity: str  # "<model_type>@<folder name>:<weights digest>", recorded with each decision
    eos_token_ids: list[int] = field(default_factory=list)

    @property
    def model_type(self) -> str:
        return self.config.model_type


def check_folder(path: str | Path | None) -> Path:
    """Fail fast, before importing torch, with the reason a folder cannot be a model."""
    if not path:
        raise ModelUnavailable("DOCKET_MODEL_PATH is not set: the model analyzer needs a local model folder "
                               "(e.g. one made by `docket model tiny DIR --arch glm46v`, or downloaded weights)")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ModelUnavailable(f"model folder {folder} does not exist (DOCKET_MODEL_PATH)")
    if not (folder / "config.json").is_file():
        raise ModelUnavailable(f"model folder {folder} has no config.json")
    try:
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"model folder {folder}: config.json is unreadable: {exc}") from None
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise ModelUnavailable(f"model folder {folder} has no weights (*.safetensors)")
    return folder.resolve()


def _weights_digest(folder: Path) -> str:
    """A cheap identity for the weights: names, sizes and mtimes, plus the index or config."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors.index.json"):
        if (folder / name).is_file():
            h.update((folder / name).read_bytes())
    for f in sorted(folder.glob("*.safetensors")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}".encode())
    return h.hexdigest()[:12]


def _processor_class_name(folder: Path, config) -> str | None:
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("processor_class"):
            return data["processor_class"]
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    return PROCESSOR_MAPPING_NAMES.get(config.model_type)


def _image_only_processor(folder: Path, config):
    """The model's processor class with the PIL image processor and no video processor."""
    import transformers
    from transformers import AutoImageProcessor, AutoTokenizer

    class_name = _processor_class_name(folder, config)
    base = getattr(transformers, class_name, None) if class_name else None
    if base is None:
        raise ModelUnavailable(f"model folder {folder}: no processor class for model type {config.model_type!r}")

    class ImageOnlyProcessor(base):  # type: ignore[misc, valid-type]
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)
            self.video_processor = None

    ImageOnlyProcessor.__name__ = ImageOnlyProcessor.__qualname__ = f"{class_name}ImageOnly"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    image_processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
    template = folder / "chat_template.jinja"
    chat_template = template.read_text(encoding="utf-8") if template.is_file() else tokenizer.chat_template
    return ImageOnlyProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template)


def load_processor(folder: Path, config):
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(folder)
    except ImportError as exc:  # a video processor that needs torchvision
        log.info("AutoProcessor needs %s; using the image-only processor", exc.__class__.__name__)
        processor = _image_only_processor(folder, config)
    if not hasattr(processor, "image_processor"):
        # AutoProcessor silently returns a bare tokenizer when processor_class is wrong.
        processor = _image_only_processor(folder, config)
    if getattr(processor, "chat_template", None) is None:
        raise ModelUnavailable(f"model folder {folder} has no chat template")
    processor.tokenizer.padding_side = "left"  # batched generate() needs left padding
    return processor


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype not in DTYPES:
        raise ModelUnavailable(f"DOCKET_MODEL_DTYPE must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def load(path: str | Path | None, *, device: str = "auto", dtype: str = "auto",
         attn_implementation: str | None = None) -> LoadedModel:
    """Load config, processor and weights; raises ModelUnavailable with the reason."""
    folder = check_folder(path)
    try:
        import torch
        from transformers import AutoConfig, AutoModelForImageTextToText
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError as exc:
        raise ModelUnavailable(f"the model analyzer needs the `model` extra (torch, transformers, xgrammar): {exc}") from None
    try:
        config = AutoConfig.from_pretrained(folder)
        processor = load_processor(folder, config)
        device = resolve_device(device)
        kwargs: dict[str, Any] = {"dtype": resolve_dtype(dtype, device)}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        model = AutoModelForImageTextToText.from_pretrained(folder, **kwargs)
        model.to(device)
        model.eval()
    except ModelUnavailable:
        raise
    except Exception as exc:
        raise ModelUnavailable(f"model folder {folder} could not be loaded: {type(exc).__name__}: {exc}") from exc
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = processor.tokenizer.eos_token_id
    eos_ids = [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None]
    if not eos_ids:
        raise ModelUnavailable(f"model folder {folder} defines no end-of-sequence token")
    identity = f"{config.model_type}@{folder.name}:{_weights_digest(folder)}"
    del torch  # imported for its side effects check only
    return LoadedModel(path=folder, model=model, processor=processor, tokenizer=processor.tokenizer,
                       config=config, device=device, identity=identity, eos_token_ids=eos_ids)
