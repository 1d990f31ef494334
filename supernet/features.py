"""What the frozen target tells the draft about a sequence: tapped hidden states, the final
hidden state (its logits are `target.lm_head` of it, recomputed instead of stored: a vocabulary
of 50k makes stored logits 200 times larger), the image scores that vision keep uses and the
merged image embeddings that drafts with image_input 'features' read at image positions.

`FeatureSource` computes them online, one target forward per sequence, or reads them from an
on-disk cache; both give the same tensors. The cache keeps, per corpus item, one file for what
every run needs (ids, masks, final hidden state), one per tap, one for the image scores and one
for the merged image embeddings (the target's input at its image positions, [images, H]): the
supernet, `eagle` and `dream` trainings of one corpus read different taps, and each tap is
computed once for all of them (a run that needs a tap no earlier run stored computes only the
missing ones, in one forward). `collate` pads a list of items into one right-padded `TargetBatch`.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from supernet.corpus import CorpusItem
from targets import MERGED_INPUT_TAP, PreparedInputs


@dataclass
class TargetBatch:
    input_ids: torch.Tensor  # [B, L], right-padded with 0
    valid: torch.Tensor  # bool [B, L]: real tokens
    response: torch.Tensor  # bool [B, L]: tokens the target generated
    image_mask: torch.Tensor  # bool [B, L]
    image_scores: torch.Tensor | None  # [B, L]: attention received in the target's last layer
    hidden: dict[int, torch.Tensor]  # tap -> [B, L, H]
    last_hidden: torch.Tensor  # [B, L, H]: final-norm output, what lm_head reads
    # [B, L, H]: the target's merged input embedding at image positions (zeros elsewhere), for
    # drafts with image_input 'features'; None when no draft of the run reads them
    image_embeds: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]


def reads_image_features(target: Any, space: Any) -> bool:
    """Whether some draft of `space` (a ResolvedSpace) reads `target`'s image features."""
    return bool(target.is_vlm) and "features" in space.image_input


class FeatureSource:
    """Target features of corpus items for fixed taps; `cache_dir` None computes them online."""

    def __init__(self, target: Any, taps: Sequence[int], image_scores: bool,
                 cache_dir: str | Path | None = None, image_embeds: bool = False):
        """image_embeds: whether some draft reads the target's image features (a VLM target)."""
        self.target, self.taps, self.image_scores = target, tuple(sorted(set(taps))), image_scores
        self.image_embeds = image_embeds
        self.cache_dir = None if cache_dir is None else Path(cache_dir)

    def item(self, index: int, item: CorpusItem) -> dict[str, torch.Tensor]:
        wanted = [BASE, *(f"tap.{tap}" for tap in self.taps)]
        wanted += [SCORES] if self.image_scores else []
        wanted += [IMAGES] if self.image_embeds else []
        if self.cache_dir is None:
            return self._compute(item, self.taps, self.image_scores, self.image_embeds)
        folder = self.cache_dir / f"{index:06d}"
        missing = [name for name in wanted if not (folder / f"{name}.safetensors").is_file()]
        tensors: dict[str, torch.Tensor] = {}
        if missing:
            taps = [tap for tap in self.taps if f"tap.{tap}" in missing]
            computed = self._compute(item, taps, SCORES in missing, IMAGES in missing)
            folder.mkdir(parents=True, exist_ok=True)
            for name in missing:
                _save_atomically({key: computed[key] for key in FILE_KEYS.get(name, [name])},
                                 folder / f"{name}.safetensors")
            tensors.update(computed)
        device = str(self.target.device)
        for name in wanted:
            if name not in missing:
                tensors.update(load_file(folder / f"{name}.safetensors", device=device))
        return tensors

    @torch.no_grad()
    def _compute(self, item: CorpusItem, taps: Sequence[int], scores: bool,
                 image_embeds: bool = False) -> dict[str, torch.Tensor]:
        """The base tensors and `taps` from one forward with the usual attention kernel (with
        `image_embeds`, the merged input tap's rows at image positions too), and with `scores`
        the image scores from an eager-attention forward of their own: taps never depend on
        whether scores were asked for at the same time, so files of any two runs agree."""
        target = self.target
        ids = item.input_ids[None].to(target.device)
        kwargs = {name: value.to(target.device) if isinstance(value, torch.Tensor) else value
                  for name, value in item.model_kwargs.items()}
        prepared = PreparedInputs(ids, kwargs, target.image_mask(ids))
        forward_taps = {*taps, MERGED_INPUT_TAP} if image_embeds else set(taps)
        out = target.forward(ids, cache=target.new_cache(), taps=tuple(sorted(forward_taps)),
                             model_kwargs=prepared.model_kwargs, logits="none")
        tensors = {f"tap.{tap}": out.hidden[tap][0] for tap in taps}
        if image_embeds:
            tensors["image_embeds"] = out.hidden[MERGED_INPUT_TAP][0][prepared.image_mask[0]]
        tensors["last_hidden"] = out.last_hidden[0]
        tensors["input_ids"] = item.input_ids
        tensors["image_mask"] = prepared.image_mask[0].cpu()
        response = torch.zeros(len(item.input_ids), dtype=torch.bool)
        response[item.prompt_len:] = True
        tensors["response"] = response
        if scores:
            values = torch.zeros(len(item.input_ids))
            if prepared.image_mask.any():
                values = target.forward(ids, cache=target.new_cache(),
                                        model_kwargs=prepared.model_kwargs, logits="none",
                                        image_scores=True).image_scores[0]
            tensors["image_scores"] = values.float()
        return tensors

    def batch(self, indexed: Sequence[tuple[int, CorpusItem]]) -> TargetBatch:
        return collate([self.item(index, item) for index, item in indexed], self.taps,
                       self.target.device)


# The cache's files per item and what each holds (a tap's file holds that tap).
BASE, SCORES, IMAGES = "base", "scores", "images"
FILE_KEYS = {BASE: ["input_ids", "image_mask", "response", "last_hidden"],
             SCORES: ["image_scores"], IMAGES: ["image_embeds"]}


def _save_atomically(tensors: dict[str, torch.Tensor], path: Path) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    # Clones: a tap can be the very tensor of last_hidden, and safetensors refuses shared memory.
    save_file({name: t.detach().cpu().clone() for name, t in tensors.items()}, partial)
    os.replace(partial, path)  # a killed run never leaves half a file


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
    image_mask = stack("image_mask", False)
    image_embeds = None
    if "image_embeds" in items[0]:  # the rows of each item's image positions, in order
        hidden = items[0]["last_hidden"].shape[-1]
        image_embeds = torch.zeros(len(items), length, hidden, device=device,
                                   dtype=items[0]["last_hidden"].dtype)
        rows = torch.cat([item["image_embeds"].to(device) for item in items])
        image_embeds[image_mask] = rows.to(image_embeds.dtype)
    return TargetBatch(
        input_ids=stack("input_ids"), valid=valid, response=stack("response", False),
        image_mask=image_mask,
        image_scores=stack("image_scores") if "image_scores" in items[0] else None,
        image_embeds=image_embeds,
        hidden={tap: stack(f"tap.{tap}") for tap in taps}, last_hidden=stack("last_hidden"))
