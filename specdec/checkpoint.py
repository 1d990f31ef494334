"""Draft checkpoints: `config.json` (DraftConfig) + `model.safetensors` (draft tensors only).

The safetensors metadata records a SHA-256 of the tensors, so flipped bytes are caught as well as
truncation; names and shapes must match the config exactly. Every problem is one DraftError line.
"""

import hashlib
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from specdec.config import DraftConfig
from specdec.errors import DraftError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
DIGEST_KEY = "draftnas_sha256"


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and raw bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_draft(draft: Any, directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().contiguous().cpu() for name, t in draft.state_dict().items()}
    draft.config.save(directory / CONFIG_FILE)
    save_file(tensors, directory / WEIGHTS_FILE, metadata={DIGEST_KEY: tensors_digest(tensors)})
    return directory


def load_draft(cls: type, directory: str | Path, target: Any = None) -> Any:
    directory = Path(directory)
    if not directory.is_dir():
        raise DraftError(f"draft checkpoint {directory}: not a directory; give the directory "
                         f"holding {CONFIG_FILE} and {WEIGHTS_FILE}")
    cfg = DraftConfig.load(directory / CONFIG_FILE)
    draft = cls(cfg)
    if target is not None:
        draft.check_target(target)
    weights = directory / WEIGHTS_FILE
    tensors = _read_tensors(weights)
    expected = draft.state_dict()
    missing, unknown = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unknown:
        raise DraftError(f"{weights}: tensors do not match {CONFIG_FILE} (missing {missing[:3]}, "
                         f"unknown {unknown[:3]}); re-export the draft")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise DraftError(f"{weights}: tensor {name} has shape {tuple(tensor.shape)}, config "
                             f"implies {tuple(expected[name].shape)}; re-export the draft")
    draft.load_state_dict(tensors)
    if target is not None:
        return draft.serve_with(target)
    return draft.eval()


def _read_tensors(weights: Path) -> dict[str, torch.Tensor]:
    if not weights.is_file():
        raise DraftError(f"{weights}: missing; a draft checkpoint needs {WEIGHTS_FILE}")
    try:
        tensors = load_file(weights)
        with safe_open(weights, framework="pt") as handle:
            recorded = (handle.metadata() or {}).get(DIGEST_KEY)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DraftError(f"{weights}: corrupted or truncated ({reason}); re-export or "
                         "re-download the draft") from None
    if recorded is None:
        raise DraftError(f"{weights}: no '{DIGEST_KEY}' metadata, so its integrity cannot be "
                         "checked; re-save it with DraftModel.save_pretrained")
    if recorded != tensors_digest(tensors):
        raise DraftError(f"{weights}: corrupted (tensor bytes do not match the recorded "
                         "checksum); re-export or re-download the draft")
    return tensors
