"""Load the target a command's config names, after checking the config's device and dtype."""

import torch

from nas.user_errors import UserError
from targets import Target, load_target

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def torch_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise UserError(f"dtype: unknown '{name}'; use one of {', '.join(DTYPES)}")
    return DTYPES[name]


def check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device: '{device}' but no CUDA GPU is visible; use device=cpu")
    try:
        torch.device(device)
    except RuntimeError as error:
        raise UserError(f"device: '{device}' is not a torch device ({error}); use cpu or cuda")


def load_configured_target(spec: str, device: str, dtype: str) -> Target:
    """`load_target` for values that come from the command line."""
    check_device(device)
    return load_target(spec, device=device, dtype=torch_dtype(dtype))
