"""`draftnas export` on a tiny LLaVA: the best or a chosen trial becomes a DraftModel checkpoint
with its provenance that decodes losslessly (refined or not); format=eagle3 refuses with one line
why no draft fits that layout; bad search directories, trials and pairings exit 2 with one line."""

import json
from pathlib import Path

import pytest
import torch
from tiny_llava_dir import save_tiny_llava

from nas.cli import main
from nas.export import eagle3_mismatches
from nas.export.selection import select_trial
from nas.objectives import TrialResult
from nas.reports import Provenance, trials_frame, write_best, write_csv
from nas.searchers import TrialRecord
from search_spaces import DraftArch, ResolvedSpace, TargetDims, load_space
from specdec import DecodeConfig, DraftModel, SpeculativeDecoder
from supernet import SuperDraft, SupernetMeta, draft_config, save_supernet
from targets import Target, load_target
from targets.tiny import tiny_inputs, tiny_target

SPACE_YAML = """
name: tiny_export
dimensions:
  num_layers: [1, 2]
  num_heads: [0.5, 1.0]
  intermediate_size: [1.0, 2.0]
  interaction: [concat, cross_attention]
  injected_layers:
    - [top]
    - [1, top]
  vision_keep_ratio: [0.5, 1.0]
  draft_vocab_size: [0.5, full]
"""
BEST = DraftArch("concat", (2,), 1, 4, 64, 1.0, None)
OTHER = DraftArch("cross_attention", (1, 2), 2, 2, 32, 0.5, 64)
TOKENS_ONLY = DraftArch("none", (), 1, 2, 32, 1.0, None)
PREDICTED = {"tau": 2.5, "latency_ms": 1.25, "speedup": 1.8}


@pytest.fixture(scope="module")
def target_dir(tmp_path_factory) -> Path:
    return save_tiny_llava(tmp_path_factory.mktemp("tiny_llava"))


@pytest.fixture(scope="module")
def target(target_dir) -> Target:
    return load_target(str(target_dir))


def resolved_space(target: Target, directory: Path) -> ResolvedSpace:
    path = directory / "tiny_export.yaml"
    path.write_text(SPACE_YAML)
    return load_space(path).resolve(TargetDims.of(target))


def trained_like_supernet(target: Target, directory: Path, seed: int) -> Path:
    """A supernet saved as `draftnas train` saves it, with perturbed weights (open gates too)."""
    superdraft = SuperDraft(resolved_space(target, directory), target,
                            vocab_ranking=list(range(target.vocab_size - 1, -1, -1)))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in superdraft.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return save_supernet(directory / "supernet", superdraft, SupernetMeta.of(superdraft, 1))


@pytest.fixture(scope="module")
def supernet(target, tmp_path_factory) -> Path:
    return trained_like_supernet(target, tmp_path_factory.mktemp("train"), seed=0)


def trial_result(arch: DraftArch, tau: float, latency_ms: float) -> TrialResult:
    return TrialResult(arch=arch, tau=tau, chain_tau=tau, tree_tau=tau,
                       acceptance_by_depth=[0.5], latency_ms=latency_ms, draft_ms=0.5,
                       speedup=1.5)


def write_search(directory: Path, target: Target, supernet: Path, target_spec: str) -> Path:
    """A search run directory as `draftnas search` writes it (nas.reports)."""
    directory.mkdir(parents=True, exist_ok=True)
    provenance = Provenance(hardware_table="hardware_profiles/tables/cpu.json",
                            supernet=str(supernet), target_spec=target_spec,
                            target_fingerprint=target.fingerprint, space="tiny_export",
                            objective={"kind": "speedup"}, searcher="tpe", study_name="test")
    best = trial_result(BEST, PREDICTED["tau"], PREDICTED["latency_ms"])
    best.speedup = PREDICTED["speedup"]
    write_best(directory / "best.json", 3, best, provenance)
    records = [TrialRecord(3, best), TrialRecord(5, trial_result(OTHER, 2.5, 6.0)),
               TrialRecord(7, trial_result(TOKENS_ONLY, 1.5, 0.5))]
    write_csv(trials_frame(records), directory / "trials.csv")
    return directory


@pytest.fixture
def search(tmp_path, target, supernet, target_dir, monkeypatch) -> Path:
    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    return write_search(tmp_path / "search", target, supernet, str(target_dir))


def export(*overrides: str) -> int:
    return main(["export", *overrides])


def assert_lossless(target: Target, draft: DraftModel, mode: dict) -> None:
    for seed in range(2):
        prepared = tiny_inputs(target, n_text=5, seed=seed)
        ids = prepared.input_ids
        reference = target.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), **prepared.model_kwargs,
            do_sample=False, max_new_tokens=12, eos_token_id=target.eos_token_ids,
            pad_token_id=target.eos_token_ids[0])[0, ids.shape[1]:].tolist()
        decoder = SpeculativeDecoder(target, draft, DecodeConfig(**mode))
        assert decoder.generate(inputs=prepared, max_new_tokens=12).token_ids == reference


def supernet_slices(target: Target, supernet: Path, arch: DraftArch) -> dict[str, torch.Tensor]:
    from supernet import load_supernet

    superdraft, _ = load_supernet(supernet, target)
    return superdraft.subnet_weights(arch)


def test_best_trial_is_exported_with_provenance_and_decodes_losslessly(search, target, supernet,
                                                                        tmp_path):
    run = tmp_path / "export"
    assert export(f"search={search}", f"run_dir={run}") == 0
    draft = DraftModel.from_pretrained(run / "draft", target)
    assert draft.config == draft_config(target, BEST, provenance=draft.config.provenance)
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
    assert_lossless(target, draft, {"mode": "tree", "depth": 3, "top_k": 2, "total_tokens": 8})


def test_chosen_trial_takes_its_row_and_decodes_losslessly(search, target, tmp_path):
    run = tmp_path / "export"
    assert export(f"search={search}", "trial=5", f"run_dir={run}") == 0
    draft = DraftModel.from_pretrained(run / "draft", target)
    assert draft.config == draft_config(target, OTHER, provenance=draft.config.provenance)
    assert draft.config.provenance["trial"] == 5
    assert draft.config.provenance["predicted"] == {"tau": 2.5, "latency_ms": 6.0,
                                                    "speedup": 1.5}
    assert_lossless(target, draft, {"mode": "chain", "k": 3})


def test_refined_draft_moves_off_the_supernet_and_stays_lossless(search, target, supernet,
                                                                 tmp_path):
    run = tmp_path / "export"
    assert export(f"search={search}", "trial=5", "refine=true", "refine_steps=2", "prompts=2",
                  "max_new_tokens=6", "refinement.lr=1e-2", "refinement.batch_size=2",
                  "refinement.loss.unroll_steps=2", f"run_dir={run}") == 0
    draft = DraftModel.from_pretrained(run / "draft", target)
    refinement = draft.config.provenance["refinement"]
    assert refinement["steps"] == 2 and refinement["sequences"] == 2
    assert all(torch.isfinite(torch.tensor(refinement[key])) for key in ("first_loss",
                                                                         "last_loss"))
    changed = [name for name, tensor in supernet_slices(target, supernet, OTHER).items()
               if not torch.equal(draft.state_dict()[name], tensor)]
    assert "layers.0.self_attn.q_proj.weight" in changed and "lm_head.weight" in changed
    assert_lossless(target, draft, {"mode": "tree", "depth": 3, "top_k": 2, "total_tokens": 8})


def test_eagle3_format_is_refused_in_one_line_before_anything_is_written(search, tmp_path,
                                                                         capsys):
    run = tmp_path / "export"
    assert export(f"search={search}", "format=eagle3", f"run_dir={run}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "EAGLE-3" in err and "format=draftnas" in err
    assert not (run / "draft").exists()


def test_eagle3_mismatches_name_each_difference(target):
    eagle_like = draft_config(target, DraftArch("concat", (1, 2), 1, 4, 64, 1.0, None))
    assert eagle_like.injected_layers == [1, 2]
    problems = eagle3_mismatches(draft_config(target, OTHER))
    assert any("cross_attention" in p for p in problems)
    assert any("num_layers 2" in p for p in problems)
    assert any("2 injected layers" in p for p in problems)
    assert any("vision_keep_ratio 0.5" in p for p in problems)
    (only,) = [p for p in eagle3_mismatches(eagle_like) if "injected layers" not in p]
    assert "per-tap RMSNorm" in only


def test_fused_features_are_not_linear_in_the_raw_taps(target):
    """Why no EAGLE-3 fc (linear over raw taps) can stand in for our fusion: scaling every tap
    by 2 leaves our per-tap-normed fusion unchanged, where any linear map would double."""
    draft = DraftModel.random(draft_config(target, BEST), target)
    hidden = {2: torch.randn(1, 4, target.hidden_size, generator=torch.Generator().manual_seed(0))}
    once, twice = draft.fuse(hidden), draft.fuse({2: 2 * hidden[2]})
    torch.testing.assert_close(twice, once)
    assert not torch.allclose(twice, 2 * once)


@pytest.mark.parametrize(("given", "words"), [(True, "best.json: missing"),
                                               (False, "search: not given")])
def test_missing_search_or_best_json_exits_2_with_one_line(tmp_path, capsys, given, words):
    search = [f"search={tmp_path}"] if given else []
    assert export(*search, f"run_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "search=" in err


def test_every_trial_row_reads_back_as_its_arch(search):
    for number, arch in ((3, BEST), (5, OTHER), (7, TOKENS_ONLY)):
        assert select_trial(search, number).arch == arch


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
