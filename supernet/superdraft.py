"""`SuperDraft`: one elastic draft that contains every point of a resolved search space.

Weight sharing (front slicing, as HAT and OFA do): the supernet holds, for each interaction of
the space, each tensor of `specdec.model.DraftModel` at the largest size the space allows, and
a subnet uses its interaction's tensors:
- the first `num_layers` layers,
- the first `num_heads` heads of every attention (head_dim fixed at the target's head size, so
  pruning heads never reshapes the heads that stay): rows of q/k/v, columns of o,
- the first `intermediate_size` FFN channels: rows of gate/up, columns of down,
- one projection (and, but for concat, one norm) per injected target layer, taken from a bank
  with one per candidate tap,
- for a reduced vocabulary of n tokens, the first n rows of a head whose rows are the target's
  tokens by frequency rank (re-ordered into ascending target ids, the DraftModel convention),
  starting as the target's own head rows of those tokens,
- whatever else its interaction's DraftModel has (concat's hidden_norm and 2D-wide layer-0
  q/k/v, the cross-attention blocks).
Each interaction has its own fusion and layers: their inputs are distributed differently (raw
taps for concat, normed ones otherwise; the embedding in add's stream, not in concat's), and
through shared layers `add` subnets reached only 0.74-0.84 of the tau of the same drafts trained
alone. Sharing across depth, heads and FFN width stays within an interaction. The head side
(final norm and head, HEAD_TENSORS) is shared by all: it reads the draft's output, which every
interaction learns to make the target's next feature.
Every tensor but the fusion bank and the head is a front slice of its shared tensor to the
subnet's own shape, so `subnet_weights` slices by the shapes of the subnet's DraftModel.
`vision_keep_ratio` has no weights: it decides which image slots the draft sees (training masks
them, `specdec.vision.select_kept_positions` picks them, as the decoder does).

`subnet_weights(arch)` returns those slices under DraftModel's parameter names, as views of
the shared parameters, so gradients reach the shared weights (DREAM-S's released code rebuilt
detached layers per step and its shared weights never learned from pruned configs). The
forward runs DraftModel's own code over the slices (`torch.func.functional_call` on a weightless
skeleton of the subnet), so a subnet computes exactly what its extracted DraftModel computes.

With an arch `activate`d, a SuperDraft answers `fuse`, `forward`, `new_cache` like a DraftModel.
"""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from search_spaces import DraftArch, ResolvedSpace, TargetDims
from specdec.config import DraftConfig
from specdec.model import DraftCache, DraftModel, DraftOutput
from specdec.vocab import vocab_maps

# DraftModel tensors that all interactions share (every other one is held per interaction).
HEAD_TENSORS = ("norm.weight", "head_proj.weight", "lm_head.weight")

# Skeletons are cheap but not free (module construction); a training run cycles through many.
SKELETON_CACHE_SIZE = 64


def shared_name(interaction: str, name: str) -> str:
    """The supernet's name for DraftModel tensor `name` of a subnet with `interaction`."""
    return name if name in HEAD_TENSORS else f"{interaction}.{name}"


def draft_config(target: Any, arch: DraftArch, **extra: Any) -> DraftConfig:
    """The DraftConfig of `arch` for `target`: as wide as the target, heads of its head size.

    Every draft made by draftnas from a space point goes through here (supernet, extraction,
    export); `DraftConfig.for_target` keeps the target's head size for pruned heads, which is
    what makes them slices of the supernet and what the latency tables are keyed by.
    """
    return DraftConfig.for_target(target, **{**arch.to_dict(), **extra})


@dataclass(frozen=True)
class SupernetShape:
    """The largest size of every elastic dimension, and the bank of candidate taps."""

    layers: int
    heads: int
    intermediate: int
    taps: tuple[int, ...]
    reduced_vocab: int  # rows of the reduced-vocabulary head (0: the space has none)

    @classmethod
    def of(cls, space: ResolvedSpace) -> "SupernetShape":
        reduced = [size for size in space.draft_vocab_size if size]
        return cls(
            layers=max(space.num_layers),
            heads=max(space.num_heads),
            intermediate=max(space.intermediate_size),
            taps=tuple(sorted({tap for taps in space.injected_layers for tap in taps})),
            reduced_vocab=max(reduced, default=0),
        )


class HeadOver:
    """`target` whose `lm_head` computes the logits of `columns` only (in that order)."""

    def __init__(self, target: Any, columns: torch.Tensor):
        self.target, self.columns = target, columns

    def lm_head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.target.lm_head(hidden, self.columns)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


class SuperDraft(nn.Module):
    def __init__(self, space: ResolvedSpace, target: Any, vocab_ranking: list[int] | None = None,
                 kl_vocabulary: list[int] | None = None):
        """space: resolved against `target`; vocab_ranking: target ids, most frequent first (at
        least the largest reduced vocabulary; default ids 0, 1, ...), from the target's responses;
        kl_vocabulary: target ids over which subnets of the target's full vocabulary learn (their
        logits and the target's, restricted and renormalised: `supernet.loss`), None: all."""
        super().__init__()
        if space.target != TargetDims.of(target):
            raise ValueError(f"space {space.name!r} was resolved for {space.target}, not for "
                             f"{TargetDims.of(target)}; resolve it against this target")
        self.space = space
        self.shape = shape = SupernetShape.of(space)
        object.__setattr__(self, "_target", target)
        ranking = list(range(shape.reduced_vocab)) if vocab_ranking is None else vocab_ranking
        self.vocab_ranking = [int(token) for token in ranking[: shape.reduced_vocab]]
        if len(self.vocab_ranking) < shape.reduced_vocab:
            raise ValueError(f"vocab_ranking has {len(ranking)} tokens; the space needs "
                             f"{shape.reduced_vocab}")
        # The largest draft of each interaction, with one projection per candidate tap, holds
        # that interaction's tensors; the first one's head is everyone's.
        keep: dict[str, nn.Parameter] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            for interaction in space.interaction:
                largest = draft_config(
                    target, space.largest(), interaction=interaction, num_layers=shape.layers,
                    num_heads=shape.heads, intermediate_size=shape.intermediate,
                    injected_layers=[] if interaction == "none" else list(shape.taps),
                    draft_vocab_size=shape.reduced_vocab or None)
                draft = DraftModel(largest, self.vocab_ranking or None)
                for name, param in draft.named_parameters():
                    keep.setdefault(shared_name(interaction, name), param)
        self.weights = nn.ParameterDict({name.replace(".", "/"): param
                                         for name, param in keep.items()})
        self.to(device=target.device, dtype=target.dtype)
        self.kl_vocabulary = None if kl_vocabulary is None else torch.tensor(
            sorted(set(kl_vocabulary)), dtype=torch.long, device=target.device)
        self._skeletons: OrderedDict[DraftArch, DraftModel] = OrderedDict()
        self._vocab_maps: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.active: DraftArch | None = None

    def start_head_from_target(self) -> None:
        """Start a reduced head as the target's own head rows of its tokens (training does,
        before its first step; the target's weights as stored, no serving runtime). The draft's
        normed output learns to be the target's last hidden state (supernet.loss), which the
        target's head reads, so these rows are already the right head and training spends its steps
        on the draft's body (a random head must first learn what the target's took its whole
        training to learn, from the few thousand answers a CPU budget affords)."""
        if not self.shape.reduced_vocab:
            return
        head = self.shared("lm_head.weight")
        weight = self.target.model.get_output_embeddings().weight
        if weight.shape[1] != head.shape[1]:  # drafts are as wide as the target: never, today
            return
        rows = torch.tensor(self.vocab_ranking, device=weight.device)
        with torch.no_grad():
            head.copy_(weight[rows].to(head))

    # -- the shared tensors --------------------------------------------------------------------
    def shared(self, name: str) -> nn.Parameter:
        """The shared parameter named `name` (`shared_name`) at the supernet's largest size."""
        return self.weights[name.replace(".", "/")]

    def shared_names(self) -> list[str]:
        return [key.replace("/", ".") for key in self.weights]

    @property
    def target(self) -> Any:
        return self._target

    def config_of(self, arch: DraftArch) -> DraftConfig:
        self.space.validate(arch)
        return draft_config(self.target, arch)

    def vocabulary(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows of the shared head in ascending target-id order, d2t, t2d) of a reduced vocab."""
        if size not in self._vocab_maps:
            ids = torch.tensor(self.vocab_ranking[:size])
            d2t, t2d = vocab_maps(ids.tolist(), self.target.vocab_size)
            rows = torch.argsort(ids)  # ascending ids: the row order of DraftModel's own head
            device = self.shared("norm.weight").device
            self._vocab_maps[size] = (rows.to(device), d2t.to(device), t2d.to(device))
        return self._vocab_maps[size]

    def subnet_weights(self, arch: DraftArch) -> dict[str, torch.Tensor]:
        """DraftModel state dict of `arch`: slices (views, in the autograd graph) of the shared
        parameters, plus the d2t/t2d buffers of a reduced vocabulary."""
        cfg = self.config_of(arch)
        out: dict[str, torch.Tensor] = {}
        for name, wanted in self.skeleton(arch).state_dict().items():
            if name.startswith("fusion."):  # fusion.{norms,projs}.{i}: tap i's entry of the bank
                _, kind, i, rest = name.split(".", 3)
                index = self.shape.taps.index(cfg.injected_layers[int(i)])
                out[name] = self.shared(shared_name(cfg.interaction,
                                                    f"fusion.{kind}.{index}.{rest}"))
            elif name == "lm_head.weight":
                rows, _, _ = self.vocabulary(cfg.draft_vocab_size)
                out[name] = self.shared(name)[: cfg.draft_vocab_size][rows]
            elif name in ("d2t", "t2d"):
                out[name] = self.vocabulary(cfg.draft_vocab_size)[1 if name == "d2t" else 2]
            else:
                front = tuple(slice(0, size) for size in wanted.shape)
                out[name] = self.shared(shared_name(cfg.interaction, name))[front]
        return out

    def draft_token_ids(self, arch: DraftArch) -> list[int] | None:
        """The reduced vocabulary (target ids) of `arch`, or None for the full one."""
        return self.vocab_ranking[: arch.draft_vocab_size] if arch.draft_vocab_size else None

    def skeleton(self, arch: DraftArch) -> DraftModel:
        """A DraftModel of `arch` whose own tensors live on the meta device (never used: every
        call passes the slices), attached to the target (whose head, for a subnet of the full
        vocabulary, computes `kl_vocabulary`'s logits only)."""
        if arch in self._skeletons:
            self._skeletons.move_to_end(arch)
            return self._skeletons[arch]
        model = DraftModel(self.config_of(arch), self.draft_token_ids(arch)).to("meta")
        restricted = self.kl_vocabulary is not None and not arch.draft_vocab_size
        head_target = HeadOver(self.target, self.kl_vocabulary) if restricted else self.target
        object.__setattr__(model, "_target", head_target)
        self._skeletons[arch] = model
        if len(self._skeletons) > SKELETON_CACHE_SIZE:
            self._skeletons.popitem(last=False)
        return model

    # -- running the active subnet (the DraftModel interface) ----------------------------------
    def activate(self, arch: DraftArch) -> "SuperDraft":
        self.space.validate(arch)
        self.active = arch
        return self

    def _active(self) -> DraftArch:
        if self.active is None:
            raise RuntimeError("SuperDraft has no active arch: call activate(arch) first")
        return self.active

    @property
    def config(self) -> DraftConfig:
        return self.config_of(self._active())

    def new_cache(self) -> DraftCache:
        return self.skeleton(self._active()).new_cache()

    def fuse(self, hidden: dict[int, torch.Tensor]) -> torch.Tensor | None:
        arch = self._active()
        skeleton = self.skeleton(arch)
        if skeleton.fusion is None:
            return None
        weights = {name.removeprefix("fusion."): tensor
                   for name, tensor in self.subnet_weights(arch).items()
                   if name.startswith("fusion.")}
        return functional_call(skeleton.fusion, weights, (hidden,), strict=True)

    def forward(self, token_ids: torch.Tensor, features: torch.Tensor | None,
                positions: torch.Tensor, cache: DraftCache | None = None,
                attention_mask: torch.Tensor | None = None,
                logits: str | torch.Tensor = "all",
                merged_embeds: torch.Tensor | None = None) -> DraftOutput:
        """DraftModel.forward of the active subnet (same arguments, same result)."""
        arch = self._active()
        return functional_call(
            self.skeleton(arch), self.subnet_weights(arch), (token_ids, features, positions),
            {"cache": cache, "attention_mask": attention_mask, "logits": logits,
             "merged_embeds": merged_embeds}, strict=True)

    def final_norm(self, hidden: torch.Tensor) -> torch.Tensor:
        """The active subnet's final norm (what its head reads) applied to `hidden`."""
        skeleton = self.skeleton(self._active())
        return functional_call(skeleton.norm, {"weight": self.shared("norm.weight")}, (hidden,))
