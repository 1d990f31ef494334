"""What the frozen target tells the draft about a sequence: tapped hidden states, the final
hidden state (its logits are `target.lm_head` of it, recomputed instead of stored: a vocabulary
of 50k makes stored logits 200 times larger) and the image scores that vision keep uses.

`FeatureSource` computes them online, one target forward per sequence, or reads them from an
on-disk cache (one safetensors file per corpus item, written on first use, in a subdirectory
named by the taps it holds); both give the same tensors. `collate` pads a list of them into one right-padded `TargetBatch`.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from supernet.corpus import CorpusItem
from targets import PreparedInputs


@dataclass
class TargetBatch:
    input_ids: torch.Tensor  # [B, L], right-padded with 0
    valid: torch.Tensor  # bool [B, L]: real tokens
    response: torch.Tensor  # bool [B, L]: tokens the target generated
    image_mask: torch.Tensor  # bool [B, L]
    image_scores: torch.Tensor | None  # [B, L]: attention received in the target's last layer
    hidden: dict[int, torch.Tensor]  # tap -> [B, L, H]
    last_hidden: torch.Tensor  # [B, L, H]: final-norm output, what lm_head reads

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]


class FeatureSource:
    """Target features of corpus items for fixed taps; `cache_dir` None computes them online."""

    def __init__(self, target: Any, taps: Sequence[int], image_scores: bool,
                 cache_dir: str | Path | None = None):
        self.target, self.taps, self.image_scores = target, tuple(sorted(set(taps))), image_scores
        # A cached file holds these taps (and image scores) only: another choice of them reads
        # and writes a directory of its own, never a file that lacks what it needs.
        self.cache_dir = None if cache_dir is None else \
            Path(cache_dir) / features_key(self.taps, image_scores)

    def item(self, index: int, item: CorpusItem) -> dict[str, torch.Tensor]:
        if self.cache_dir is None:
            return self._compute(item)
        path = self.cache_dir / f"{index:06d}.safetensors"
        if path.is_file():
            return load_file(path, device=str(self.target.device))
        tensors = self._compute(item)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        # Clones: a tap can be the very tensor of last_hidden, and safetensors refuses shared memory.
        save_file({name: t.detach().cpu().clone() for name, t in tensors.items()}, partial)
        os.replace(partial, path)
        return tensors

    @torch.no_grad()
    def _compute(self, item: CorpusItem) -> dict[str, torch.Tensor]:
        target = self.target
        ids = item.input_ids[None].to(target.device)
        kwargs = {name: value.to(target.device) if isinstance(value, torch.Tensor) else value
                  for name, value in item.model_kwargs.items()}
        prepared = PreparedInputs(ids, kwargs, target.image_mask(ids))
        wants_scores = self.image_scores and bool(prepared.image_mask.any())
        out = target.forward(ids, cache=target.new_cache(), taps=self.taps,
                             model_kwargs=prepared.model_kwargs, logits="none",
                             image_scores=wants_scores)
        tensors = {f"tap.{tap}": out.hidden[tap][0] for tap in self.taps}
        tensors["last_hidden"] = out.last_hidden[0]
        tensors["input_ids"] = item.input_ids
        tensors["image_mask"] = prepared.image_mask[0].cpu()
        response = torch.zeros(len(item.input_ids), dtype=torch.bool)
        response[item.prompt_len:] = True
        tensors["response"] = response
        if self.image_scores:
            scores = out.image_scores[0] if wants_scores else torch.zeros(len(item.input_ids))
            tensors["image_scores"] = scores.float()
        return tensors

    def batch(self, indexed: Sequence[tuple[int, CorpusItem]]) -> TargetBatch:
        return collate([self.item(index, item) for index, item in indexed], self.taps,
                       self.target.device)


def features_key(taps: Sequence[int], image_scores: bool) -> str:
    """The name of a cache directory by what its files hold: `taps-3-5`, `taps-3-5-scores`."""
    return "-".join(["taps", *map(str, taps), *(["scores"] if image_scores else [])])


def collate(items: Sequence[dict[str, torch.Tensor]], taps: Sequence[int],
            device: torch.device) -> TargetBatch:
    length = max(len(item["input_ids"]) for item in items)

    def stack(name: str, fill: float | bool = 0) -> torch.Tensor:
        rows = []
        for item in items:
            value = item[name].to(device)
            pad = length - value.shape[0]
            shape = (pad, *value.shape[1:])
            rows.append(torch.cat((value, torch.full(shape, fill, dtype=value.dtype,
                                                     device=device))))
        return torch.stack(rows)

    valid = torch.stack([
        torch.arange(length, device=device) < len(item["input_ids"]) for item in items])
    return TargetBatch(
        input_ids=stack("input_ids"), valid=valid, response=stack("response", False),
        image_mask=stack("image_mask", False),
        image_scores=stack("image_scores") if "image_scores" in items[0] else None,
        hidden={tap: stack(f"tap.{tap}") for tap in taps}, last_hidden=stack("last_hidden"))
