"""Supernet checkpoints: atomic, complete, resumable; and the finished supernet as an artifact.

A training checkpoint is a directory `checkpoints/step-NNNNNNN/` holding
  supernet.safetensors   the shared weights (SuperDraft parameter names)
  state.pt               optimizer, scheduler, torch and Python RNG states, the step (which is
                         the data position: batches are a fixed function of the step)
  meta.json              what the weights belong to: resolved space, target fingerprint, reduced
                         vocabulary ranking, intermediate tap
It is written under a temporary name and renamed into place (atomic on one filesystem); then the
file `checkpoints/latest` is replaced atomically to name it. A run killed at any moment leaves
the previous complete checkpoint as `latest`. Older ones are pruned after that.

`save_supernet` / `load_supernet` write and read the finished supernet (weights + meta) that
searchers and export load; `check_meta` refuses weights made for another space or target.
"""

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from search_spaces import ResolvedSpace
from specdec.shape import DEFAULT_SHAPE, DecodeShape
from supernet.errors import SupernetError
from supernet.files import read_tensors, read_torch_file
from supernet.superdraft import SuperDraft

WEIGHTS_FILE = "supernet.safetensors"
STATE_FILE = "state.pt"
META_FILE = "meta.json"
LATEST_FILE = "latest"


@dataclass
class SupernetMeta:
    space: dict[str, Any]  # ResolvedSpace.to_dict()
    target_fingerprint: str
    vocab_ranking: list[int]
    intermediate_tap: int | None
    # The decoding shapes the trained space file lists (labels): what a search of this supernet
    # tries unless told otherwise. The weights serve any shape.
    decode: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, superdraft: SuperDraft, intermediate_tap: int | None,
           decode: tuple[DecodeShape, ...] = ()) -> "SupernetMeta":
        return cls(superdraft.space.to_dict(), superdraft.target.fingerprint,
                   list(superdraft.vocab_ranking), intermediate_tap,
                   [shape.label for shape in decode])

    @property
    def shapes(self) -> tuple[DecodeShape, ...]:
        """`decode` as shapes; the default tree for a supernet of a space that listed none."""
        return tuple(DecodeShape.parse(label) for label in self.decode) or (DEFAULT_SHAPE,)

    def save(self, directory: Path) -> None:
        _write_atomic(directory / META_FILE, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> "SupernetMeta":
        path = directory / META_FILE
        try:
            data = json.loads(path.read_text())
            # Supernets trained while a resolved space held its shapes have them in `space`.
            listed = data["space"].pop("decode", None)
            return cls(**{"decode": listed or [], **data})
        except (OSError, json.JSONDecodeError, TypeError, KeyError, AttributeError) as error:
            raise SupernetError(f"{path}: unreadable supernet meta ({type(error).__name__}); "
                                "use a complete supernet directory or retrain") from None


def check_meta(meta: SupernetMeta, space: ResolvedSpace, fingerprint: str, source: Path) -> None:
    """Refuse weights of another space or target, naming what differs."""
    if meta.target_fingerprint != fingerprint:
        raise SupernetError(
            f"{source}: trained for target {meta.target_fingerprint[:12]}, not this target "
            f"{fingerprint[:12]}; use that target or a fresh run_dir (resume=false)")
    if meta.space != space.to_dict():
        raise SupernetError(
            f"{source}: trained for search space {meta.space.get('name')!r} "
            f"({_space_difference(meta.space, space.to_dict())}), not {space.name!r} as resolved "
            "now; use that space or a fresh run_dir (resume=false)")


def _space_difference(saved: dict[str, Any], now: dict[str, Any]) -> str:
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            return f"{key} {saved.get(key)!r} vs {now.get(key)!r}"
    return "same"


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def weights_of(superdraft: SuperDraft) -> dict[str, torch.Tensor]:
    return {name: superdraft.shared(name).detach().contiguous().cpu()
            for name in superdraft.shared_names()}


def load_weights(superdraft: SuperDraft, path: Path) -> None:
    tensors = read_tensors(path, "retrain, or restore the file from a backup")
    expected = {name: tuple(superdraft.shared(name).shape) for name in superdraft.shared_names()}
    found = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
    if found != expected:
        # e.g. a supernet saved before the concat layer became EAGLE-3's (input_fc, D-wide q/k/v)
        differing = sorted(name for name in expected.keys() | found.keys()
                           if expected.get(name) != found.get(name))
        raise SupernetError(f"{path}: tensors do not match this supernet ({len(differing)} "
                            f"missing, unexpected or reshaped, e.g. {differing[:3]}); retrain "
                            "or fix the space")
    with torch.no_grad():
        for name, tensor in tensors.items():
            superdraft.shared(name).copy_(tensor)


# -- training checkpoints ------------------------------------------------------------------------
def save_checkpoint(root: Path, step: int, superdraft: SuperDraft, meta: SupernetMeta,
                    training_state: dict[str, Any], keep: int = 2) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"
    building = root / f".building-step-{step:07d}-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    save_file(weights_of(superdraft), building / WEIGHTS_FILE)
    torch.save({"step": step, **training_state}, building / STATE_FILE)
    meta.save(building)
    shutil.rmtree(final, ignore_errors=True)  # a re-run of the same step after a resume
    os.replace(building, final)
    _write_atomic(root / LATEST_FILE, final.name + "\n")
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint under `root`, or None when there is none."""
    pointer = root / LATEST_FILE
    if not pointer.is_file():
        return None
    path = root / pointer.read_text().strip()
    if not (path / STATE_FILE).is_file():
        raise SupernetError(f"{pointer} names {path.name}, which is incomplete; delete "
                            f"{pointer} to restart, or restore the checkpoint")
    return path


def load_checkpoint(path: Path, superdraft: SuperDraft, fingerprint: str) -> dict[str, Any]:
    """Load weights into `superdraft` after checking the meta; returns the training state."""
    check_meta(SupernetMeta.load(path), superdraft.space, fingerprint, path)
    load_weights(superdraft, path / WEIGHTS_FILE)
    return read_torch_file(path / STATE_FILE, "restore it, or start afresh with resume=false")


# -- the finished supernet -----------------------------------------------------------------------
def save_supernet(directory: Path, superdraft: SuperDraft, meta: SupernetMeta) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f".{WEIGHTS_FILE}.partial"
    save_file(weights_of(superdraft), partial)
    os.replace(partial, directory / WEIGHTS_FILE)
    meta.save(directory)
    return directory


def load_supernet(directory: str | Path, target: Any) -> tuple[SuperDraft, SupernetMeta]:
    """A trained SuperDraft for `target` from `save_supernet`'s directory."""
    directory = Path(directory)
    if not (directory / WEIGHTS_FILE).is_file():
        raise SupernetError(f"{directory}: no {WEIGHTS_FILE}; point to the supernet/ directory "
                            "of a `draftnas train` run")
    meta = SupernetMeta.load(directory)
    space = ResolvedSpace.from_dict(meta.space)
    if meta.target_fingerprint != target.fingerprint:
        raise SupernetError(f"{directory}: trained for target {meta.target_fingerprint[:12]}, "
                            f"not {target.fingerprint[:12]}; load it with its own target")
    superdraft = SuperDraft(space, target, meta.vocab_ranking)
    load_weights(superdraft, directory / WEIGHTS_FILE)
    return superdraft, meta
