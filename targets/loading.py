"""`load_target(spec)`: an embedded target name, a local model directory, or a cached HF model id.

A directory with `config.json` and weights is enough; a processor or tokenizer is loaded when the
directory has one. Hub ids are read from the local Hugging Face cache only (no network at run time).
No code of the directory's own runs (trust_remote_code=False on every load, and a config that
needs such code is refused: targets.model_directory): only architectures that transformers ships.
"""

import re
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

from targets.embedded import embedded_path, is_embedded
from targets.errors import TargetError
from targets.families import family_of
from targets.model_directory import check_model_directory
from targets.processors import load_processor, load_tokenizer
from targets.runtime import check_runtime
from targets.target import Target

_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def load_target(
    spec: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32,
    quantize: str = "none", home: Path | None = None,
) -> Target:
    """Load the frozen target named by `spec`: 'shapes' (or 'shapes:<build>'), 'smollm2', a
    directory or a HF model id. `quantize` is the runtime it serves with (targets.runtime: none |
    fp16); `home`: where embedded targets are built (default `draftnas_home()`)."""
    check_runtime(quantize, device, dtype)
    name = str(spec)
    path = _resolve(name, home)
    return _load_directory(path, spec=name, device=device, dtype=dtype, quantize=quantize)


def _resolve(name: str, home: Path | None) -> Path:
    if is_embedded(name):
        return embedded_path(name, home)
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        return candidate
    if _HUB_ID.match(name) and not candidate.exists():
        return _from_hub_cache(name)
    raise TargetError(
        f"target {name!r} is unknown: use 'shapes', 'smollm2', a local model directory "
        "or a Hugging Face model id already in the local cache"
    )


def _from_hub_cache(model_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        raise TargetError(
            f"target {model_id!r} is not in the local Hugging Face cache and draftnas runs offline; "
            f"download it once (hf download {model_id}) or pass a local directory"
        ) from None


def _load_directory(path: Path, *, spec: str, device: str, dtype: torch.dtype,
                    quantize: str) -> Target:
    if not (path / "config.json").is_file():
        raise TargetError(
            f"{path}: no config.json; point the target at a directory with a model config and weights"
        )
    if not any(file.name.endswith(_WEIGHT_SUFFIXES) for file in path.iterdir()):
        raise TargetError(
            f"{path}: no weights (*.safetensors or *.bin); add the model's weights to the directory"
        )
    check_model_directory(path)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    except (ValueError, KeyError, OSError) as error:
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise TargetError(
            f"{path / 'config.json'}: cannot be read ({first_line}); fix or replace the config"
        ) from None
    traits = family_of(config)
    model_class = AutoModelForImageTextToText if traits.is_vlm else AutoModelForCausalLM
    model = model_class.from_pretrained(path, trust_remote_code=False, dtype=dtype,
                                        attn_implementation="sdpa").to(device)
    processor = load_processor(path) if traits.is_vlm and _has(path, _PROCESSOR_FILES) else None
    tokenizer = None
    if processor is None and _has(path, _TOKENIZER_FILES):
        tokenizer = load_tokenizer(path)
    return Target(model, spec=spec, path=str(path), tokenizer=tokenizer, processor=processor,
                  quantize=quantize)


def _has(path: Path, names: tuple[str, ...]) -> bool:
    return any((path / name).is_file() for name in names)
