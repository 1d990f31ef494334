"""A search run directory as `draftnas search` writes it, for the export tests: a tiny LLaVA, a
supernet of a small space with perturbed weights, best.json and trials.csv naming three of its
drafts; the fixtures (import them into a test module) and the checks the export tests share."""

from pathlib import Path

import pytest
import torch
from tiny_llava_dir import save_tiny_llava

from nas.candidates import Candidate
from nas.cli import main
from nas.objectives import TrialResult
from nas.reports import Provenance, trials_frame, write_best, write_csv
from nas.searchers import TrialRecord
from search_spaces import DraftArch, ResolvedSpace, TargetDims, load_space
from specdec import DecodeConfig, DraftModel, SpeculativeDecoder
from specdec.shape import DEFAULT_SHAPE, DecodeShape
from supernet import SuperDraft, SupernetMeta, save_supernet
from targets import Target, load_target
from targets.tiny import tiny_inputs

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


def resolved_space(target: Target, directory: Path, space_yaml: str) -> ResolvedSpace:
    path = directory / "space.yaml"
    path.write_text(space_yaml)
    return load_space(path).resolve(TargetDims.of(target))


def trained_like_supernet(target: Target, directory: Path, seed: int,
                          space_yaml: str = SPACE_YAML, shapes: tuple[DecodeShape, ...] = ()
                          ) -> Path:
    """A supernet saved as `draftnas train` saves it, with perturbed weights (open gates too)."""
    superdraft = SuperDraft(resolved_space(target, directory, space_yaml), target,
                            vocab_ranking=list(range(target.vocab_size - 1, -1, -1)))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in superdraft.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return save_supernet(directory / "supernet", superdraft,
                         SupernetMeta.of(superdraft, 1, shapes))


@pytest.fixture(scope="module")
def supernet(target, tmp_path_factory) -> Path:
    return trained_like_supernet(target, tmp_path_factory.mktemp("train"), seed=0)


def trial_result(arch: DraftArch, tau: float, latency_ms: float) -> TrialResult:
    return TrialResult(candidate=Candidate(arch, DEFAULT_SHAPE), tau=tau, chain_tau=tau, tree_tau=tau,
                       acceptance_by_depth=[0.5], latency_ms=latency_ms, draft_ms=0.5,
                       speedup=1.5)


def write_search(directory: Path, target: Target, supernet: Path, target_spec: str,
                 best_arch: DraftArch = BEST,
                 table: str = "hardware_profiles/tables/cpu.json") -> Path:
    """A search run directory as `draftnas search` writes it (nas.reports)."""
    directory.mkdir(parents=True, exist_ok=True)
    provenance = Provenance(hardware_table=table,
                            supernet=str(supernet), target_spec=target_spec,
                            target_fingerprint=target.fingerprint, space="tiny_export",
                            objective={"kind": "speedup"}, searcher="tpe", study_name="test")
    best = trial_result(best_arch, PREDICTED["tau"], PREDICTED["latency_ms"])
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


def assert_lossless(target: Target, draft: DraftModel, shape: DecodeShape) -> None:
    for seed in range(2):
        prepared = tiny_inputs(target, n_text=5, seed=seed)
        ids = prepared.input_ids
        reference = target.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), **prepared.model_kwargs,
            do_sample=False, max_new_tokens=12, eos_token_id=target.eos_token_ids,
            pad_token_id=target.eos_token_ids[0])[0, ids.shape[1]:].tolist()
        decoder = SpeculativeDecoder(target, draft, DecodeConfig(shape))
        assert decoder.generate(inputs=prepared, max_new_tokens=12).token_ids == reference


def supernet_slices(target: Target, supernet: Path, arch: DraftArch) -> dict[str, torch.Tensor]:
    from supernet import load_supernet

    superdraft, _ = load_supernet(supernet, target)
    return superdraft.subnet_weights(arch)
