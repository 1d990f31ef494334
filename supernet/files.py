"""Reading the files supernet training leaves on disk (weights, training state, corpus caches): a
damaged or foreign file is a SupernetError that names it and the fix, not a SafetensorError or
UnpicklingError traceback."""

import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from supernet.errors import SupernetError


def read_tensors(path: Path, fix: str) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError) as error:
        raise SupernetError(f"{path}: not a whole safetensors file ({error}); {fix}") from None


def read_torch_file(path: Path, fix: str) -> Any:
    """`torch.load(weights_only=True)`: tensors and plain containers only, no code of the file's."""
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError:
        raise SupernetError(f"{path}: holds Python objects other than tensors, which draftnas "
                            f"never unpickles (torch.load weights_only=True); {fix}") from None
    except (RuntimeError, EOFError, OSError) as error:  # truncated: not a whole zip archive
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SupernetError(f"{path}: cannot be read ({reason}); {fix}") from None
