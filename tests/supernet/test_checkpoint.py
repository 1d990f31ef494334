"""Checkpoints hold everything, name what they belong to, and refuse another space or target."""

import json
import random

import pytest
import torch
from deep_targets import Ranked, deep_tiny_llama

from search_spaces import TargetDims, load_space
from specdec.shape import DEFAULT_SHAPE
from supernet.checkpoint import (
    SupernetMeta,
    latest_checkpoint,
    load_checkpoint,
    load_supernet,
    save_checkpoint,
    save_supernet,
)
from supernet.errors import SupernetError
from supernet.superdraft import SuperDraft


def trained(superdraft: SuperDraft, seed: int) -> SuperDraft:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in superdraft.parameters():
            param.add_(torch.randn(param.shape, generator=generator))
    return superdraft


def test_latest_checkpoint_restores_weights_and_state(deep_target, dream_s, tmp_path):
    superdraft = trained(SuperDraft(dream_s, deep_target), seed=0)
    meta = SupernetMeta.of(superdraft, intermediate_tap=3)
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, superdraft, meta, {"note": step})
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-0000002", "step-0000003"]
    fresh = SuperDraft(dream_s, deep_target)
    state = load_checkpoint(latest_checkpoint(tmp_path), fresh, deep_target.fingerprint)
    assert state == {"step": 3, "note": 3}
    for name in superdraft.shared_names():
        assert torch.equal(fresh.shared(name), superdraft.shared(name)), name


def test_checkpoint_of_another_target_or_space_is_refused(deep_target, dream_s, tmp_path):
    superdraft = SuperDraft(dream_s, deep_target)
    save_checkpoint(tmp_path, 1, superdraft, SupernetMeta.of(superdraft, None), {})
    other_target = deep_tiny_llama(seed=1)
    with pytest.raises(SupernetError, match="trained for target .*resume=false"):
        load_checkpoint(latest_checkpoint(tmp_path), SuperDraft(dream_s, other_target),
                        other_target.fingerprint)
    eagle = load_space("eagle").resolve(TargetDims.of(deep_target), Ranked((3, 2, 4)))
    with pytest.raises(SupernetError, match="search space 'dream_s'.* not 'eagle'"):
        load_checkpoint(latest_checkpoint(tmp_path), SuperDraft(eagle, deep_target),
                        deep_target.fingerprint)


def test_saved_supernet_loads_with_its_space_and_vocabulary(deep_target, dream_s, tmp_path):
    ranking = random.Random(0).sample(range(128), 128)
    superdraft = trained(SuperDraft(dream_s, deep_target, ranking), seed=2)
    save_supernet(tmp_path, superdraft, SupernetMeta.of(superdraft, 3))
    loaded, meta = load_supernet(tmp_path, deep_target)
    assert loaded.space == dream_s and meta.intermediate_tap == 3
    assert loaded.vocab_ranking == superdraft.vocab_ranking
    arch = dream_s.largest()
    for name, tensor in superdraft.subnet_weights(arch).items():
        assert torch.equal(loaded.subnet_weights(arch)[name], tensor), name
    with pytest.raises(SupernetError, match="load it with its own target"):
        load_supernet(tmp_path, deep_tiny_llama(seed=1))


def test_a_supernet_lists_its_spaces_shapes_beside_the_space(deep_target, dream_s, tmp_path):
    """The shapes a search of it tries; a supernet saved while the resolved space held them
    (meta.json's space["decode"]) loads with them moved beside the space."""
    superdraft = SuperDraft(dream_s, deep_target)
    shapes = load_space("dream_s").decode
    save_supernet(tmp_path, superdraft, SupernetMeta.of(superdraft, 3, shapes))
    _, meta = load_supernet(tmp_path, deep_target)
    assert meta.shapes == shapes and "decode" not in meta.space
    old = json.loads((tmp_path / "meta.json").read_text())
    old["space"]["decode"] = old.pop("decode")
    (tmp_path / "meta.json").write_text(json.dumps(old))
    loaded, meta = load_supernet(tmp_path, deep_target)
    assert loaded.space == dream_s and meta.shapes == shapes
    del old["space"]["decode"]  # one trained before shapes were searched: the default tree
    (tmp_path / "meta.json").write_text(json.dumps(old))
    assert load_supernet(tmp_path, deep_target)[1].shapes == (DEFAULT_SHAPE,)
