"""Entropy calibration: rank the target's intermediate layers into injected-layer candidates.

DREAM's rule: the per-token attention entropy H(i) = -sum_j A_ij log A_ij of a layer,
averaged over heads and tokens, measures how focused that layer is; the intermediate layer
with the lowest entropy is the one to inject. The target adapter computes the per-layer
averages (`Target.attention_entropy`, eager attention); this module ranks them.

Index mapping (stated once, used everywhere): `layer_entropies[j]` describes decoder layer j
(0-based), whose output is tap j + 1 in transformers' `output_hidden_states` indexing
(0 = embeddings, num_layers = the last layer). "Intermediate" excludes the very first decoder
layer (tap 1) and the last (tap num_layers), so the candidates are taps 2..num_layers-1; a
target with fewer than 3 layers has none, and a space that asks for `entropy:N` then fails
to resolve with a one-line `SpaceError`.

`Calibration` satisfies `search_spaces.RankedTaps` (it has `candidate_taps`), so
`space.resolve(dims, calibration)` takes it as is. It is saved as `calibration.json`;
loading one made on another target fails with one line.
"""

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import torch

from targets.target import PreparedInputs

FILE_NAME = "calibration.json"
FORMAT_VERSION = 1


class CalibrationError(ValueError):
    """A calibration that cannot be made or used; the message is one line with the fix."""


class EntropyTarget(Protocol):
    """What calibration needs of `targets.Target`."""

    fingerprint: str
    num_layers: int

    def attention_entropy(self, batches: Iterable[PreparedInputs]) -> torch.Tensor: ...


@dataclass(frozen=True)
class Calibration:
    layer_entropies: tuple[float, ...]  # [j]: decoder layer j, whose output is tap j + 1
    candidate_taps: tuple[int, ...]  # intermediate taps, lowest entropy first
    target_fingerprint: str
    num_tokens: int

    def save(self, path: str | Path) -> Path:
        """Write to `path`, or to `path/calibration.json` when `path` is a directory."""
        path = Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        data = {"format": FORMAT_VERSION, **asdict(self)}
        # Atomic: a run killed mid-write must not leave a truncated file that a resume trusts.
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(partial, path)
        return path

    @classmethod
    def load(cls, path: str | Path, fingerprint: str | None = None) -> "Calibration":
        """Read a saved calibration; with `fingerprint`, refuse one made on another target."""
        path = Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        if not path.is_file():
            raise CalibrationError(f"{path} does not exist; run calibration to create it")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise CalibrationError(
                f"{path} is not JSON ({error.msg}); delete it and recalibrate"
            ) from error
        expected = {"format", *cls.__dataclass_fields__}
        if not isinstance(data, dict) or set(data) != expected:
            keys = ", ".join(sorted(expected))
            raise CalibrationError(f"{path} must have exactly the keys {keys}; recalibrate")
        version = data.pop("format")
        if version != FORMAT_VERSION:
            raise CalibrationError(
                f"{path} has format {version!r}, this version reads {FORMAT_VERSION}; recalibrate"
            )
        try:
            calibration = cls(
                layer_entropies=tuple(float(h) for h in data["layer_entropies"]),
                candidate_taps=tuple(int(tap) for tap in data["candidate_taps"]),
                target_fingerprint=str(data["target_fingerprint"]),
                num_tokens=int(data["num_tokens"]),
            )
        except (TypeError, ValueError) as error:
            raise CalibrationError(
                f"{path} holds a malformed value ({error}); recalibrate"
            ) from error
        if calibration.candidate_taps != rank_intermediate_taps(calibration.layer_entropies):
            raise CalibrationError(
                f"{path} candidate_taps do not follow its layer_entropies; recalibrate"
            )
        if fingerprint is not None and calibration.target_fingerprint != fingerprint:
            raise CalibrationError(
                f"{path} was calibrated on target {calibration.target_fingerprint[:12]}, "
                f"not on this target {fingerprint[:12]}; recalibrate or pick the matching target"
            )
        return calibration


def rank_intermediate_taps(layer_entropies: Sequence[float]) -> tuple[int, ...]:
    """Taps of the intermediate decoder layers, lowest attention entropy first.

    Decoder layer j maps to tap j + 1; layers 0 and num_layers - 1 are not intermediate.
    Ties go to the shallower layer so that the ranking is deterministic.
    """
    for layer, entropy in enumerate(layer_entropies):
        if not math.isfinite(entropy) or entropy < 0:
            raise CalibrationError(
                f"attention entropy of decoder layer {layer} is {entropy}; "
                "check the calibration inputs (eager attention, non-empty batches)"
            )
    intermediate = range(1, len(layer_entropies) - 1)
    ranked = sorted(intermediate, key=lambda layer: (layer_entropies[layer], layer))
    return tuple(layer + 1 for layer in ranked)


def calibrate(target: EntropyTarget, batches: Iterable[PreparedInputs]) -> Calibration:
    """Measure the target's per-layer attention entropy on `batches` and rank its layers."""
    batches = list(batches)  # read twice: by the target and to count the tokens seen
    if not batches:
        raise CalibrationError("calibration got no batches; pass at least one prepared input")
    entropies = target.attention_entropy(batches)
    if tuple(entropies.shape) != (target.num_layers,):
        raise CalibrationError(
            f"attention_entropy returned shape {tuple(entropies.shape)}, expected "
            f"({target.num_layers},); the target adapter must return one value per layer"
        )
    layer_entropies = tuple(float(h) for h in entropies.tolist())
    return Calibration(
        layer_entropies=layer_entropies,
        candidate_taps=rank_intermediate_taps(layer_entropies),
        target_fingerprint=target.fingerprint,
        # Prepared inputs are unpadded single prompts, so every id is a token the entropy saw.
        num_tokens=sum(int(batch.input_ids.numel()) for batch in batches),
    )
