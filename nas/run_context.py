"""What one draftnas process shares between the commands it runs; passed to each one explicitly.

`RunContext` holds the draftnas home (embedded target builds, corpora, assistants, feature caches),
the latency tables (`hardware_profiles.table_store`) and the targets loaded so far: a target is
loaded and fingerprinted once per process and `TargetKey`, however many commands use it (the
stages of a pipeline). The CLI builds one from the environment at its entry ($DRAFTNAS_HOME, and
$DRAFTNAS_SHAPES_BUDGET: the build a plain `shapes` means); a Ray worker gets a copy inside the
search's evaluator spec, without the loaded targets (it loads its own, once). No environment
variable is written.

How a command loads its target is here and nowhere else: its config has the keys of
`TargetConfig` (with `ServeConfig`'s runtime for the commands that decode or time it), and
`ctx.target(cfg)` checks them and loads (or reuses) the target. Training needs the target's
weights as they are (gradients flow through its head), so a config without a runtime loads the
target with none.
"""

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hardware_profiles.table_store import TableStore
from nas.user_errors import UserError
from targets import Target, load_target
from targets.embedded import BUILT_IN_SEVERAL_WAYS, split_spec
from targets.embedded.shapes import BUDGET_ENV as SHAPES_BUILD_ENV
from targets.home import draftnas_home
from targets.runtime import QUANTIZE

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEFAULT_BUILD = "full"  # the build of plain `shapes` when nothing names one (its real recipe)


@dataclass(kw_only=True)
class TargetConfig:
    """The keys of every command that loads a target: which one, where, in which precision."""

    target: str
    device: str
    dtype: str

    @classmethod
    def of(cls, cfg: "TargetConfig") -> "TargetConfig":
        """Only the target keys (this class's) of a command's config."""
        return cls(**{key.name: getattr(cfg, key.name) for key in dataclasses.fields(cls)})

    def onto(self, cfg: Any) -> Any:
        """`cfg`, a command's config, with those of these target keys that it has."""
        return dataclasses.replace(cfg, **{key.name: getattr(self, key.name)
                                           for key in dataclasses.fields(self)
                                           if hasattr(cfg, key.name)})


@dataclass(kw_only=True)
class ServeConfig(TargetConfig):
    """A target that decodes or is timed: also how its linears compute (targets.runtime). auto:
    fp16 on a CPU in float32 (what measured fastest there, experiments/latency.md), else none."""

    quantize: str


def runtime_of(cfg: TargetConfig) -> str:
    """The runtime `cfg` asks for, `auto` resolved; none for a config without one (training)."""
    quantize = getattr(cfg, "quantize", "none")
    if quantize == "auto":
        cpu = torch.device(cfg.device).type == "cpu"
        return "fp16" if cpu and cfg.dtype == "float32" else "none"
    if quantize not in QUANTIZE:
        raise UserError(f"quantize: unknown '{quantize}'; use auto or one of {', '.join(QUANTIZE)}")
    return quantize


@dataclass(frozen=True)
class TargetKey:
    """What tells two loads of a target apart; commands asking for the same key share one."""

    spec: str  # as `RunContext.spec` writes it: an embedded target with its build, a directory
    # made absolute, a hub id as given
    device: str
    dtype: str
    quantize: str  # the runtime, `auto` resolved (targets.runtime)


@dataclass(frozen=True)
class RunContext:
    home: Path
    tables: TableStore
    shapes_build: str | None = None  # $DRAFTNAS_SHAPES_BUDGET: what plain `shapes` means
    loaded: dict[TargetKey, Target] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_environment(cls) -> "RunContext":
        home = draftnas_home()
        return cls(home, TableStore(home / "tables"), os.environ.get(SHAPES_BUILD_ENV) or None)

    def with_tables(self, directory: Path) -> "RunContext":
        """The same context (its loaded targets too) with the user's tables in `directory`."""
        return dataclasses.replace(self, tables=dataclasses.replace(self.tables,
                                                                    directory=directory))

    def spec(self, spec: str, build: str | None = None) -> str:
        """`spec` as results record it and targets are shared by: `shapes` with its build (the
        one it names, else $DRAFTNAS_SHAPES_BUDGET's, else `build`, else full), a local directory
        as an absolute path, anything else as given."""
        name, named_build = split_spec(spec)
        if name in BUILT_IN_SEVERAL_WAYS:
            return f"{name}:{named_build or self.shapes_build or build or DEFAULT_BUILD}"
        path = Path(spec).expanduser()
        return str(path.resolve()) if named_build is None and path.is_dir() else spec

    def key(self, cfg: TargetConfig, spec: str | None = None) -> TargetKey:
        check_device(cfg.device)
        if cfg.dtype not in DTYPES:
            raise UserError(f"dtype: unknown '{cfg.dtype}'; use one of {', '.join(DTYPES)}")
        return TargetKey(self.spec(spec or cfg.target), cfg.device, cfg.dtype, runtime_of(cfg))

    def target(self, cfg: TargetConfig, spec: str | None = None) -> Target:
        """The target `cfg` names (or `spec`, on cfg's device and dtype), loaded on first use."""
        key = self.key(cfg, spec)
        if key not in self.loaded:
            self.loaded[key] = load_target(key.spec, device=key.device, dtype=DTYPES[key.dtype],
                                           quantize=key.quantize, home=self.home)
        return self.loaded[key]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for another process (a Ray worker): everything but the loaded targets."""
        return {**self.__dict__, "loaded": {}}


def check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device: '{device}' but no CUDA GPU is visible; use device=cpu")
    try:
        torch.device(device)
    except RuntimeError as error:
        raise UserError(f"device: '{device}' is not a torch device ({error}); use cpu or cuda")
