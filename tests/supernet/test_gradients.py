"""Every shared tensor a subnet uses learns from it: the slices are views inside the graph."""

import random

import torch

from search_spaces import DraftArch
from supernet.features import TargetBatch
from supernet.loss import LossConfig, unrolled_loss
from supernet.superdraft import SuperDraft, shared_name


def random_batch(target, length: int = 12, seed: int = 0) -> TargetBatch:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, target.vocab_size, (2, length), generator=generator)
    response = torch.zeros(2, length, dtype=torch.bool)
    response[:, 4:] = True
    hidden = {tap: torch.randn(2, length, target.hidden_size, generator=generator)
              for tap in range(target.num_layers + 1)}
    return TargetBatch(ids, torch.ones_like(response), response, torch.zeros_like(response), None,
                       hidden, torch.randn(2, length, target.hidden_size, generator=generator))


def used_slices(superdraft: SuperDraft, arch: DraftArch) -> dict[str, tuple[slice, slice]]:
    """Shared name -> (rows, columns) of it that `arch` uses, from the slice shapes."""
    used = {}
    for name, tensor in superdraft.subnet_weights(arch).items():
        if name in ("d2t", "t2d"):
            continue
        if name.startswith("fusion."):
            i = int(name.split(".")[2])
            index = superdraft.shape.taps.index(arch.injected_layers[i])
            name = name.replace(f".{i}.", f".{index}.")
        shape = tuple(tensor.shape) + (None,) * (2 - tensor.dim())
        used[shared_name(arch.interaction, name)] = tuple(slice(0, size)
                                                          for size in shape[: tensor.dim()])
    return used


def test_every_used_slice_of_every_sampled_subnet_gets_a_gradient(deep_target, dream_s):
    superdraft = SuperDraft(dream_s, deep_target)
    with torch.no_grad():  # open the tanh gates: at 0 they block the cross blocks' gradients
        for name in superdraft.shared_names():
            if name.endswith("_gate"):
                superdraft.shared(name).fill_(0.5)
    rng = random.Random(1)
    archs = [dream_s.largest(), dream_s.smallest()] + [dream_s.sample(rng) for _ in range(10)]
    batch = random_batch(deep_target)
    cfg = LossConfig(unroll_steps=2)
    for arch in archs:
        superdraft.zero_grad(set_to_none=True)
        unrolled_loss(superdraft.activate(arch), batch, cfg, intermediate_tap=3).loss.backward()
        used = used_slices(superdraft, arch)
        for name in superdraft.shared_names():
            grad = superdraft.shared(name).grad
            if name not in used:
                assert grad is None or not grad.any(), f"{name} is not in {arch} but learned"
                continue
            assert grad is not None, f"{name} of {arch} got no gradient (detached?)"
            if name == "lm_head.weight":  # rows of the reduced vocabulary, in frequency order
                region = grad[: arch.draft_vocab_size]
            else:
                region = grad[used[name]]
            rows = region.reshape(region.shape[0], -1) if region.dim() else region.reshape(1, 1)
            assert rows.abs().sum(-1).gt(0).all(), f"part of {name} of {arch} got no gradient"
