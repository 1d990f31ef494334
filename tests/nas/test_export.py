"""`draftnas export` on a tiny LLaVA: the best or a chosen trial becomes a DraftModel checkpoint
with its provenance that decodes losslessly (refined: test_export_refine.py); bad search
directories, trials and pairings exit 2 with one line. format=eagle3 on a deeper tiny Llama writes exactly the EAGLE-3
layout, and a reference EAGLE-3 forward over the written files computes what the draft computes;
a draft that does not fit is refused with one line naming why."""

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from eagle3_reference import eagle3_forward
from export_search import (
    BEST,
    OTHER,
    PREDICTED,
    TOKENS_ONLY,
    assert_lossless,
    export,
    supernet_slices,
    trained_like_supernet,
    write_search,
)
from safetensors.torch import load_file
from tiny_llava_dir import save_tiny_llava

from nas.candidates import Candidate
from nas.export import eagle3_mismatches, write_eagle3
from nas.export.selection import select_trial
from search_spaces import DraftArch
from specdec import DraftModel
from specdec.shape import DEFAULT_SHAPE, DecodeShape
from supernet import draft_config
from targets import Target
from targets.tiny import tiny_target

sys.path.insert(0, str(Path(__file__).parents[1] / "supernet"))
from deep_targets import deep_tiny_llama

# On the 5-layer Llama: taps 2 and 4 fit EAGLE-3 (aux ids 1..4), `top` (5) does not.
DEEP_SPACE_YAML = """
name: tiny_eagle3
dimensions:
  num_layers: [1, 2]
  num_heads: [0.5, 1.0]
  intermediate_size: [1.0, 2.0]
  interaction: [concat, add]
  injected_layers:
    - [2, 4]
    - [top]
  vision_keep_ratio: [1.0]
  draft_vocab_size: [0.5, full]
"""
EAGLE_LIKE = DraftArch("concat", (2, 4), 1, 2, 64, 1.0, 64)


def test_best_trial_is_exported_with_provenance_and_decodes_losslessly(search, target, supernet,
                                                                        tmp_path):
    run = tmp_path / "export"
    assert export(f"search={search}", f"run_dir={run}") == 0
    draft = DraftModel.from_pretrained(run / "draft", target)
    assert draft.config == draft_config(target, BEST, provenance=draft.config.provenance,
                                        decode=DEFAULT_SHAPE)
    provenance = draft.config.provenance
    assert provenance["trial"] == 3 and provenance["predicted"] == PREDICTED
    assert provenance["hardware_table"] == "hardware_profiles/tables/cpu.json"
    assert provenance["target"]["fingerprint"] == target.fingerprint
    assert provenance["space"] == "tiny_export" and provenance["supernet"] == str(supernet)
    assert "refinement" not in provenance
    for name, tensor in supernet_slices(target, supernet, BEST).items():
        assert torch.equal(draft.state_dict()[name], tensor), name
    result = json.loads((run / "result.json").read_text())["result"]
    assert result["draft"] == str(run / "draft") and result["trial"] == 3
    assert_lossless(target, draft, DecodeShape(depth=3, top_k=2, total_tokens=8))


def test_chosen_trial_takes_its_row_and_decodes_losslessly(search, target, tmp_path):
    run = tmp_path / "export"
    assert export(f"search={search}", "trial=5", f"run_dir={run}") == 0
    draft = DraftModel.from_pretrained(run / "draft", target)
    assert draft.config == draft_config(target, OTHER, provenance=draft.config.provenance,
                                        decode=DEFAULT_SHAPE)
    assert draft.config.provenance["trial"] == 5
    assert draft.config.provenance["predicted"] == {"tau": 2.5, "latency_ms": 6.0,
                                                    "speedup": 1.5}
    assert_lossless(target, draft, DecodeShape.chain(3))


def test_eagle3_format_is_refused_in_one_line_before_anything_is_written(search, tmp_path,
                                                                         capsys):
    """The tiny LLaVA's best trial reads tap 2 of a 2-layer target: no engine captures that."""
    run = tmp_path / "export"
    assert export(f"search={search}", "format=eagle3", f"run_dir={run}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "EAGLE-3" in err and "format=draftnas" in err
    assert "taps [2]" in err and "a target of 2 layers" in err
    assert not (run / "draft").exists()


@pytest.fixture(scope="module")
def deep_target() -> Target:
    return deep_tiny_llama()


def test_eagle3_mismatches_name_each_difference(target, deep_target):
    problems = eagle3_mismatches(draft_config(target, OTHER), target)
    assert any("cross_attention" in p for p in problems)
    assert any("num_layers 2" in p for p in problems)
    assert any("vision_keep_ratio 0.5" in p for p in problems)
    too_many = DraftArch("concat", (1, 2, 3, 4), 1, 4, 64, 1.0, None)
    (only,) = eagle3_mismatches(draft_config(deep_target, too_many), deep_target)
    assert "4 injected layers" in only
    assert eagle3_mismatches(draft_config(deep_target, EAGLE_LIKE), deep_target) == []
    reads_images = replace(EAGLE_LIKE, image_input="features")
    (only,) = eagle3_mismatches(draft_config(deep_target, reads_images), deep_target)
    assert "image_input 'features'" in only and "ignores the image features" in only


def perturbed_draft(target: Target, arch: DraftArch) -> DraftModel:
    """A random draft whose norms are not all ones (so a misplaced norm shows)."""
    size = arch.draft_vocab_size
    token_ids = list(range(1, 2 * size, 2)) if size else None  # odd ids: d2t is not all zero
    draft = DraftModel.random(draft_config(target, arch), target, token_ids)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in draft.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    return draft


def test_eagle3_files_hold_exactly_the_formats_tensors_and_keys(deep_target, tmp_path):
    draft = perturbed_draft(deep_target, EAGLE_LIKE)  # 2 heads of 8 on a width of 32, vocab 64
    directory = write_eagle3(draft, tmp_path / "eagle3")
    tensors = load_file(directory / "model.safetensors")
    D, H, V, inner, F = 32, 32, 128, 16, 64
    shapes = {"fc.weight": (D, 3 * H), "midlayer.input_layernorm.weight": (D,),
              "midlayer.hidden_norm.weight": (D,),
              "midlayer.self_attn.q_proj.weight": (inner, 2 * D),
              "midlayer.self_attn.k_proj.weight": (inner, 2 * D),
              "midlayer.self_attn.v_proj.weight": (inner, 2 * D),
              "midlayer.self_attn.o_proj.weight": (D, inner),
              "midlayer.post_attention_layernorm.weight": (D,),
              "midlayer.mlp.gate_proj.weight": (F, D), "midlayer.mlp.up_proj.weight": (F, D),
              "midlayer.mlp.down_proj.weight": (D, F), "norm.weight": (D,),
              "lm_head.weight": (64, D), "d2t": (64,), "t2d": (V,)}
    assert {name: tuple(tensor.shape) for name, tensor in tensors.items()} == shapes
    assert tensors["d2t"].dtype == torch.int64 and tensors["t2d"].dtype == torch.bool
    assert all(tensors[name].dtype == torch.float32
               for name in shapes if name not in ("d2t", "t2d"))
    # Aux ids: taps 2 and 4 plus the lowest free id 1, ascending; id 1's columns are zero.
    fc = tensors["fc.weight"]
    assert not fc[:, :H].any()
    assert torch.equal(fc[:, H:2 * H], draft.fusion.projs[0].weight)
    assert torch.equal(fc[:, 2 * H:], draft.fusion.projs[1].weight)
    config = json.loads((directory / "config.json").read_text())
    assert config == {
        "architectures": ["LlamaForCausalLMEagle3"], "model_type": "llama",
        "num_hidden_layers": 1, "hidden_size": D, "intermediate_size": F,
        "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 8, "hidden_act": "silu",
        "rms_norm_eps": draft.config.rms_norm_eps, "rope_theta": draft.config.rope_theta,
        "max_position_embeddings": 256, "attention_bias": False, "mlp_bias": False,
        "tie_word_embeddings": False, "vocab_size": V, "draft_vocab_size": 64,
        "target_hidden_size": H, "torch_dtype": "float32",
        "eagle_config": {"eagle_aux_hidden_state_layer_ids": [1, 2, 4],
                         "use_aux_hidden_state": True}}


def draft_logits_over_target_vocab(draft: DraftModel, tokens, features, positions):
    """The draft's logits scattered onto target ids, -inf elsewhere (as vLLM's compute_logits)."""
    with torch.no_grad():
        out = draft(tokens, features, positions)
    width = out.logits.shape[-1]
    logits = out.logits.new_full((*out.logits.shape[:2], draft.config.target_vocab_size),
                                 float("-inf"))
    logits[..., draft.to_target_ids(torch.arange(width))] = out.logits
    return logits, out.hidden


def assert_reference_eagle3_matches(draft: DraftModel, directory: Path, seed: int) -> None:
    target = draft.target
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, target.vocab_size, (2, 7), generator=generator)
    aux = {layer: torch.randn(2, 7, target.hidden_size, generator=generator)
           for layer in range(target.num_layers + 1)}
    positions = torch.arange(1, 8).expand(2, 7)
    expected, expected_hidden = draft_logits_over_target_vocab(
        draft, tokens, draft.fuse(aux), positions)
    with torch.no_grad():
        got, hidden = eagle3_forward(directory, target.embed_tokens(tokens), aux, positions)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(hidden, expected_hidden, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", [
    EAGLE_LIKE,  # 2 taps (one zero block), pruned heads, reduced vocabulary
    DraftArch("concat", (1, 2, 3), 1, 4, 32, 1.0, None),  # 3 taps, the target's head
])
def test_reference_eagle3_forward_over_the_files_equals_the_draft(deep_target, arch, tmp_path):
    draft = perturbed_draft(deep_target, arch)
    assert_reference_eagle3_matches(draft, write_eagle3(draft, tmp_path / "eagle3"), seed=1)


def test_export_format_eagle3_writes_the_layout_beside_the_draft(deep_target, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    target_dir = tmp_path / "deep_llama"
    deep_target.model.save_pretrained(target_dir)
    supernet = trained_like_supernet(deep_target, tmp_path, seed=2, space_yaml=DEEP_SPACE_YAML)
    search = write_search(tmp_path / "search", deep_target, supernet, str(target_dir),
                          best_arch=EAGLE_LIKE)
    run = tmp_path / "export"
    assert export(f"search={search}", "format=eagle3", f"run_dir={run}") == 0
    result = json.loads((run / "result.json").read_text())["result"]
    assert result["eagle3"] == str(run / "eagle3") and result["format"] == "eagle3"
    draft = DraftModel.from_pretrained(run / "draft", deep_target)
    assert_reference_eagle3_matches(draft, run / "eagle3", seed=3)


@pytest.mark.parametrize(("given", "words"), [(True, "best.json: missing"),
                                               (False, "search: not given")])
def test_missing_search_or_best_json_exits_2_with_one_line(tmp_path, capsys, given, words):
    search = [f"search={tmp_path}"] if given else []
    assert export(*search, f"run_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "search=" in err


def test_every_trial_row_reads_back_as_its_arch(search):
    for number, arch in ((3, BEST), (5, OTHER), (7, TOKENS_ONLY)):
        assert select_trial(search, number).candidate == Candidate(arch, DEFAULT_SHAPE)


def test_trial_not_in_trials_csv_exits_2_with_one_line(search, tmp_path, capsys):
    assert export(f"search={search}", "trial=9", f"run_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trial=9 is not in" in err and "3, 5, 7" in err


def test_supernet_of_another_target_exits_2_with_one_line(target, target_dir, tmp_path,
                                                          monkeypatch, capsys):
    other = tiny_target("llava_clip", seed=1, vocab_size=128)
    assert other.fingerprint != target.fingerprint
    foreign = trained_like_supernet(other, tmp_path, seed=0)
    search = write_search(tmp_path / "search", target, foreign, str(target_dir))
    assert export(f"search={search}", f"run_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "supernet" in err and "trained for target" in err


def test_target_other_than_the_searched_one_exits_2_with_one_line(search, tmp_path, capsys):
    elsewhere = save_tiny_llava(tmp_path / "other_llava", seed=1)
    assert export(f"search={search}", f"target={elsewhere}", f"run_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "target=" in err and "fingerprint" in err


def test_arch_outside_the_supernets_space_exits_2_with_one_line(search, tmp_path, capsys):
    best = json.loads((search / "best.json").read_text())
    best["arch"]["num_layers"] = 3
    (search / "best.json").write_text(json.dumps(best))
    assert export(f"search={search}", f"run_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not fit supernet" in err and "num_layers" in err
