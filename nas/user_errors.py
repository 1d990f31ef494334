"""What counts as bad user input, in one place, and how the CLI says it in one line.

A command that raises one of `user_error_types()` exits 2 with `draftnas <command>: error: <one
line>`; anything else is a bug and keeps its traceback. A package that adds its own error type
(a ValueError whose message names the bad field or file and the fix) lists it here.
"""

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException


class UserError(ValueError):
    """Bad input noticed by the CLI or a command itself (a missing file, an unknown key)."""


def user_error_types() -> tuple[type[Exception], ...]:
    # Imported here, not at module level: some of these modules import torch, and
    # `draftnas --help` should not wait for it.
    from hardware_profiles.table import TableError
    from nas.calibration import CalibrationError
    from search_spaces.errors import SpaceError
    from specdec.errors import DraftError
    from supernet.errors import SupernetError
    from targets.errors import TargetError
    from userdata.errors import DataError

    return (
        UserError,
        TargetError,
        SpaceError,
        DraftError,
        CalibrationError,
        SupernetError,
        TableError,
        DataError,
        HydraException,  # malformed override, unknown key, wrong type: from `compose`
        OmegaConfBaseException,  # a value that does not fit its structured-config type
    )


# Lines of Hydra and OmegaConf messages that are noise on a command line: locations inside the
# config object, a link to the grammar, an `+key=` hint that a structured config refuses anyway
# (and, below, a `--multirun` hint: draftnas commands do not sweep).
NOISE_PREFIXES = ("full_key:", "object_type=", "reference_type=", "See https://", "To append")


def one_line(error: BaseException) -> str:
    """The error's message, with its cause's, folded into one line."""
    parts = []
    for source in (error, error.__cause__):
        # A cause whose message the error already quotes would be said twice.
        if source is None or (source is error.__cause__ and str(source) in str(error)):
            continue
        lines = [line.strip() for line in str(source).splitlines()]
        parts += [line.rstrip(".") for line in lines
                  if line and not line.startswith(NOISE_PREFIXES) and "--multirun" not in line]
    if isinstance(error, HydraException | OmegaConfBaseException):
        parts.append("see the keys with --help")
    return "; ".join(parts) or type(error).__name__
