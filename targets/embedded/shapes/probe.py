"""The auxiliary training signal of the vision tower: heads that read the image facts off its features.

A from-scratch CLIP tower trained only through the language loss is ignored (answers stay at the
prior). These heads, trained on the same features the projector reads, teach the tower shape,
colour, background, position and size from the pixels first, and keep doing so alongside the
language loss. They are a training aid only: the shipped model does not contain them.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from targets.embedded.shapes.pixels import (
    BACKGROUNDS,
    PALETTE,
    POSITIONS,
    SHAPES,
    SIZES,
    measure,
    shape_mask,
)

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": tuple(PALETTE),
    "background": BACKGROUNDS,
    "position": POSITIONS,
    "size": SIZES,
}


@dataclass
class ProbeTargets:
    """Per-image labels: class indices per fact, and each patch's fraction of shape pixels."""

    classes: dict[str, torch.Tensor]  # name -> (images,) long
    coverage: torch.Tensor  # (images, patches) float in [0, 1]


def probe_targets(images: list[Image.Image], patch_size: int) -> ProbeTargets:
    facts = [measure(image) for image in images]
    classes = {
        name: torch.tensor([names.index(getattr(fact, name)) for fact in facts])
        for name, names in CLASS_NAMES.items()
    }
    coverage = []
    for image in images:
        mask = shape_mask(image).astype(np.float32)
        grid = mask.shape[0] // patch_size
        patches = mask.reshape(grid, patch_size, grid, patch_size).mean(axis=(1, 3))
        coverage.append(torch.from_numpy(patches.reshape(-1)))
    return ProbeTargets(classes, torch.stack(coverage))


# Facts every patch the shape touches must know: the language model may read any one of them.
PATCH_FACTS = ("shape", "colour")


class VisionProbe(nn.Module):
    """Heads over patch features: per fact after attention pooling (the language model also
    attends), per patch for coverage, and per touched patch for shape and colour (dense, local
    supervision: a patch on the outline sees straight or curved edges)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(hidden))
        self.heads = nn.ModuleDict({
            name: nn.Linear(hidden, len(names)) for name, names in CLASS_NAMES.items()
        })
        self.patch_heads = nn.ModuleDict({
            name: nn.Linear(hidden, len(CLASS_NAMES[name])) for name in PATCH_FACTS
        })
        self.coverage = nn.Linear(hidden, 1)

    def _pooled(self, patch_features: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(patch_features @ self.query / patch_features.shape[-1] ** 0.5, dim=1)
        return (weights.unsqueeze(-1) * patch_features).sum(dim=1)

    def loss(self, patch_features: torch.Tensor, targets: ProbeTargets, index: torch.Tensor) -> torch.Tensor:
        """Mean of the per-fact, per-patch and coverage losses, for images `index`."""
        pooled = self._pooled(patch_features)
        losses = [
            F.cross_entropy(head(pooled), targets.classes[name][index])
            for name, head in self.heads.items()
        ]
        coverage = targets.coverage[index]
        touched = coverage > 0
        for name, head in self.patch_heads.items():
            labels = targets.classes[name][index].unsqueeze(1).expand_as(coverage)
            losses.append(F.cross_entropy(head(patch_features[touched]), labels[touched]))
        coverage_logits = self.coverage(patch_features).squeeze(-1)
        losses.append(F.binary_cross_entropy_with_logits(coverage_logits, coverage))
        return torch.stack(losses).mean()

    @torch.no_grad()
    def accuracy(self, patch_features: torch.Tensor, targets: ProbeTargets, index: torch.Tensor) -> dict[str, float]:
        pooled = self._pooled(patch_features)
        return {
            name: (head(pooled).argmax(-1) == targets.classes[name][index]).float().mean().item()
            for name, head in self.heads.items()
        }
