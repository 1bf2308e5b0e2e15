"""Vision-language model support for the `model` analyzer: loading (with a torchvision-free
processor fallback), prompts, constrained JSON decoding, and the GPU batcher."""
