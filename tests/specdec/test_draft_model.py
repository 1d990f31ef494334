"""DraftModel on a tiny target: cache consistency, tree masks, checkpoints and their validation."""

import json
from pathlib import Path

import pytest
import torch

from specdec.config import INTERACTIONS, DraftConfig
from specdec.errors import DraftError
from specdec.model import DraftModel
from targets.tiny import tiny_target


@pytest.fixture(scope="module")
def target():
    return tiny_target("llama", seed=0)


def make_draft(target, interaction: str, **choices) -> DraftModel:
    layers = [] if interaction == "none" else [1, target.num_layers]
    cfg = DraftConfig.for_target(target, interaction=interaction, injected_layers=layers,
                                 num_layers=2, **choices)
    draft = DraftModel.random(cfg, target, seed=3)
    for layer in draft.layers:  # open the cross-attention gates so that path is exercised
        if layer.cross is not None:
            layer.cross.attn_gate.data.fill_(0.7)
            layer.cross.mlp_gate.data.fill_(-0.4)
    return draft


def slots(target, draft, length: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, target.vocab_size, (1, length), generator=generator)
    hidden = {tap: torch.randn(1, length, target.hidden_size, generator=generator)
              for tap in draft.config.injected_layers}
    return tokens, draft.fuse(hidden), torch.arange(1, length + 1)[None]


@pytest.mark.parametrize("interaction", INTERACTIONS)
def test_incremental_slots_equal_one_full_forward(target, interaction):
    draft = make_draft(target, interaction)
    tokens, features, positions = slots(target, draft, 7)
    with torch.no_grad():
        full = draft(tokens, features, positions)
        cache = draft.new_cache()
        first = draft(tokens[:, :4], None if features is None else features[:, :4],
                      positions[:, :4], cache)
        rest = [draft(tokens[:, i:i + 1], None if features is None else features[:, i:i + 1],
                      positions[:, i:i + 1], cache) for i in range(4, 7)]
    incremental = torch.cat([first.logits] + [out.logits for out in rest], dim=1)
    torch.testing.assert_close(incremental, full.logits, rtol=1e-4, atol=1e-5)
    assert cache.length == 7


@pytest.mark.parametrize("interaction", ["concat", "cross_attention"])
def test_tree_mask_equals_running_each_branch_alone(target, interaction):
    """Two siblings fed in one call with a tree mask see exactly what each sees when run alone."""
    draft = make_draft(target, interaction)
    tokens, features, positions = slots(target, draft, 7)
    siblings = torch.tensor([[5, 9]])
    sibling_features = features[:, 4:6]
    sibling_positions = torch.tensor([[5, 5]])
    with torch.no_grad():
        cache = draft.new_cache()
        draft(tokens[:, :4], features[:, :4], positions[:, :4], cache)
        mask = torch.tensor([[True] * 4 + [True, False], [True] * 4 + [False, True]])[None]
        together = draft(siblings, sibling_features, sibling_positions, cache, mask).logits
        alone = []
        for i in range(2):
            cache.crop(4)
            alone.append(draft(siblings[:, i:i + 1], sibling_features[:, i:i + 1],
                               sibling_positions[:, i:i + 1], cache).logits)
    torch.testing.assert_close(together, torch.cat(alone, dim=1), rtol=1e-4, atol=1e-5)


def test_concat_fusion_reads_raw_taps_the_others_norm_them(target):
    """concat's fusion is EAGLE-3's fc (linear in the raw taps); add and cross_attention norm
    each tap first, so scaling the taps leaves their features unchanged."""
    hidden = {tap: torch.randn(1, 4, target.hidden_size, generator=torch.Generator().manual_seed(0))
              for tap in (1, target.num_layers)}
    doubled = {tap: 2 * state for tap, state in hidden.items()}
    concat, add = make_draft(target, "concat"), make_draft(target, "add")
    with torch.no_grad():
        torch.testing.assert_close(concat.fuse(doubled), 2 * concat.fuse(hidden))
        torch.testing.assert_close(add.fuse(doubled), add.fuse(hidden))
    assert concat.fusion.norms is None and len(add.fusion.norms) == 2


@pytest.mark.parametrize("interaction", ["concat", "add"])
def test_concat_residual_stream_starts_at_the_features_alone(target, interaction):
    """EAGLE-3's first layer: attention reads [norm(embedding) ; norm(features)] (q/k/v 2D wide),
    but the residual is the features alone. With every branch's output projection zeroed the
    draft's output is what its residual stream started as: the features for concat, the
    normed embedding plus the normed features for add (a target's embeddings are tiny beside
    its hidden states, so add norms both terms of its sum)."""
    draft = make_draft(target, interaction)
    D = target.hidden_size
    first, second = draft.layers
    assert first.self_attn.q_proj.in_features == (2 * D if interaction == "concat" else D)
    assert (first.hidden_norm is not None) == (interaction == "concat")
    assert second.hidden_norm is None and second.self_attn.q_proj.in_features == D
    tokens, features, positions = slots(target, draft, 5)
    with torch.no_grad():
        for layer in draft.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        hidden = draft(tokens, features, positions).hidden
    embedding = target.embed_tokens(tokens)
    expected = features
    if interaction == "add":
        expected = rms_normed(embedding) + rms_normed(features)
    torch.testing.assert_close(hidden, expected)


@pytest.mark.parametrize("interaction, choices", [
    ("concat", {}), ("cross_attention", {"hidden_size": 48, "head_dim": 8}),
    ("add", {"draft_vocab_size": 40}), ("none", {}),
])
def test_save_and_load_round_trip(target, interaction, choices, tmp_path: Path):
    token_ids = list(range(3, 3 + 2 * 40, 2)) if choices.get("draft_vocab_size") else None
    cfg = DraftConfig.for_target(target, interaction=interaction, **choices,
                                 provenance={"trial": 7})
    draft = DraftModel.random(cfg, target, draft_token_ids=token_ids, seed=1)
    draft.save_pretrained(tmp_path)
    loaded = DraftModel.from_pretrained(tmp_path, target=target)
    assert loaded.config == cfg
    saved = draft.state_dict()
    assert not any(name.startswith(("embed_tokens", "model.")) for name in saved)
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    if token_ids is not None:
        assert loaded.to_target_ids(torch.arange(40)).tolist() == token_ids
    tokens, features, positions = slots(target, draft, 5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens, features, positions).logits,
                                   draft(tokens, features, positions).logits)


@pytest.fixture
def saved_draft(target, tmp_path: Path) -> Path:
    cfg = DraftConfig.for_target(target, interaction="concat")
    DraftModel.random(cfg, target).save_pretrained(tmp_path)
    return tmp_path


def expect_one_line(match: str, load) -> None:
    with pytest.raises(DraftError, match=match) as error:
        load()
    assert "\n" not in str(error.value)


def test_draft_for_another_target_is_refused(saved_draft: Path):
    other_weights = tiny_target("llama", seed=1)
    expect_one_line("fingerprint", lambda: DraftModel.from_pretrained(saved_draft, other_weights))
    other_sizes = tiny_target("qwen2", seed=0)
    expect_one_line("target_", lambda: DraftModel.from_pretrained(saved_draft, other_sizes))


def test_corrupted_and_truncated_weights_are_refused(target, saved_draft: Path):
    weights = saved_draft / "model.safetensors"
    data = bytearray(weights.read_bytes())
    weights.write_bytes(bytes(data[: len(data) // 2]))
    expect_one_line("truncated", lambda: DraftModel.from_pretrained(saved_draft, target))
    data[-100] ^= 0xFF  # a flipped byte inside the last tensor
    weights.write_bytes(bytes(data))
    expect_one_line("corrupted", lambda: DraftModel.from_pretrained(saved_draft, target))
    weights.write_bytes(b"\x07" * 16)
    expect_one_line("corrupted or truncated",
                    lambda: DraftModel.from_pretrained(saved_draft, target))


@pytest.mark.parametrize("edit, match", [
    (lambda c: c.pop("num_heads"), "missing key"),
    (lambda c: c.update(dropout=0.1), "unknown key"),
    (lambda c: c.update(interaction="mlp"), "interaction"),
    (lambda c: c.update(target_hidden_size=c["target_hidden_size"] * 2), "target_hidden_size"),
])
def test_bad_config_json_is_refused(target, saved_draft: Path, edit, match):
    path = saved_draft / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    expect_one_line(match, lambda: DraftModel.from_pretrained(saved_draft, target))


def test_not_json_is_refused(saved_draft: Path):
    (saved_draft / "config.json").write_text("{ interaction: concat")
    expect_one_line("not valid JSON", lambda: DraftModel.from_pretrained(saved_draft))


def rms_normed(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
