"""`draftnas export refine=true`: the chosen subnet trained alone before it is extracted. It moves
off the supernet and stays lossless; it reads the features cached on disk; a killed refinement
continues exactly; and the refined draft recommends the decoding shape its own measured tau makes
fastest on the search's table (one line when that table is missing)."""

import importlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from export_search import (
    DEFAULT_SHAPE,
    OTHER,
    SPACE_YAML,
    assert_lossless,
    export,
    resolved_space,
    supernet_slices,
    trained_like_supernet,
    write_search,
)
from tiny_tables import write_table

from nas.export import ExportError, RefineConfig
from nas.measured_shapes import decoded_tau, prepared
from specdec import DraftModel
from specdec.shape import DecodeShape
from supernet.corpus import cached_corpus
from supernet.loss import LossConfig
from userdata import DataConfig, UserData


def test_refined_draft_moves_off_the_supernet_and_stays_lossless(search, target, supernet,
                                                                 tmp_path):
    run = tmp_path / "export"
    assert export(f"search={search}", "trial=5", "refine=true", "data=shapes", "refine_steps=2",
                  "prompts=2", "validation_prompts=0",
                  "max_new_tokens=6", "refinement.lr=1e-2", "refinement.batch_size=2",
                  "refinement.loss.unroll_steps=2", f"run_dir={run}") == 0
    draft = DraftModel.from_pretrained(run / "draft", target)
    refinement = draft.config.provenance["refinement"]
    assert refinement["steps"] == 2 and refinement["sequences"] == 2
    assert "shapes" not in refinement and draft.config.decode == DEFAULT_SHAPE  # the search's
    assert all(torch.isfinite(torch.tensor(refinement[key])) for key in ("first_loss",
                                                                         "last_loss"))
    changed = [name for name, tensor in supernet_slices(target, supernet, OTHER).items()
               if not torch.equal(draft.state_dict()[name], tensor)]
    assert "layers.0.self_attn.q_proj.weight" in changed and "lm_head.weight" in changed
    assert_lossless(target, draft, DecodeShape(depth=3, top_k=2, total_tokens=8))


def test_a_killed_refinement_continues_where_it_stopped_and_ends_as_an_unbroken_one(
        target, supernet, tmp_path, monkeypatch):
    """Checkpoints every step; the run killed in its third step, rerun, trains steps 3 and 4
    only and ends with the weights and losses of a run never interrupted."""
    from supernet import load_supernet

    # The module (the package exports its function under the same name).
    refine_module = importlib.import_module("nas.export.refine")

    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    prompts = UserData(DataConfig(source="shapes"), target.spec).take(target, "train", 3, 6)
    corpus = cached_corpus(target, prompts.inputs, 6, tmp_path / "home")
    cfg = RefineConfig(batch_size=2, lr=1e-2, warmup_steps=1, min_lr_ratio=0.1,
                       checkpoint_every=1, loss=LossConfig(unroll_steps=2))

    def refined(checkpoints: Path) -> tuple[dict, dict]:
        superdraft, _ = load_supernet(supernet, target)
        report = refine_module.refine(superdraft, OTHER, corpus, 1, 4, cfg, None, checkpoints)
        return report, superdraft.subnet_weights(OTHER)

    unbroken, expected = refined(tmp_path / "unbroken")
    backward, calls = refine_module.sandwich_backward, []

    def killed_in_the_third_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return backward(*args, **kwargs)

    monkeypatch.setattr(refine_module, "sandwich_backward", killed_in_the_third_step)
    with pytest.raises(KeyboardInterrupt):
        refined(tmp_path / "broken")
    monkeypatch.setattr(refine_module, "sandwich_backward", backward)
    resumed, weights = refined(tmp_path / "broken")
    assert (unbroken["resumed_from_step"], resumed["resumed_from_step"]) == (0, 2)
    assert (resumed["first_loss"], resumed["last_loss"]) == (unbroken["first_loss"],
                                                            unbroken["last_loss"])
    assert all(torch.equal(weights[name], expected[name]) for name in expected)
    other = replace(cfg, lr=1e-3)
    superdraft, _ = load_supernet(supernet, target)
    with pytest.raises(ExportError, match="another draft or with other settings"):
        refine_module.refine(superdraft, OTHER, corpus, 1, 4, other, None, tmp_path / "broken")


SHAPES = (DecodeShape.chain(1), DecodeShape.chain(2), DecodeShape(depth=3, top_k=2,
                                                                    total_tokens=6))


@pytest.fixture
def priced_search(tmp_path, target, target_dir, monkeypatch) -> Path:
    """A search whose supernet lists three decoding shapes and whose table prices them."""
    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    (tmp_path / "train").mkdir()
    supernet = trained_like_supernet(target, tmp_path / "train", seed=0, shapes=SHAPES)
    table = write_table(tmp_path / "table.json", target,
                        resolved_space(target, tmp_path, SPACE_YAML), SHAPES)
    return write_search(tmp_path / "search", target, supernet, str(target_dir), table=str(table))


def test_a_refined_draft_recommends_the_shape_its_own_tau_makes_fastest(priced_search, target,
                                                                        tmp_path):
    """After refining, every shape of the supernet is decoded on held-out prompts with the refined
    draft and priced on the search's table: the draft recommends the fastest, and its measured
    tau and predicted speedup replace the search's (kept under decode.search)."""
    run = tmp_path / "export"
    assert export(f"search={priced_search}", "refine=true", "data=shapes", "refine_steps=2",
                  "prompts=2", "validation_prompts=2", "max_new_tokens=6",
                  "refinement.batch_size=2", "refinement.loss.unroll_steps=2",
                  f"run_dir={run}") == 0
    draft = DraftModel.from_pretrained(run / "draft", target)
    provenance = draft.config.provenance
    rows = provenance["refinement"]["shapes"]
    assert [row["shape"] for row in rows] == [shape.label for shape in SHAPES]
    best = max(rows, key=lambda row: row["speedup"])
    assert draft.config.decode == DecodeShape.parse(best["shape"])
    assert provenance["predicted"] == {key: best[key] for key in ("tau", "latency_ms", "speedup")}
    assert provenance["decode"]["tau_source"] == "measured after refinement"
    assert provenance["decode"]["search"]["shape"] == DEFAULT_SHAPE.label
    assert len({row["speedup"] for row in rows}) == len(rows)  # the table tells them apart
    # The recorded tau is the exported draft's own, decoding the held-out prompts.
    data = UserData(DataConfig(source="shapes"), target.spec)
    held_out = data.take(target, "validation", 2, 6)
    corpus = cached_corpus(target, held_out.inputs, 6, tmp_path / "home")
    tau = decoded_tau(target, draft, draft.config.decode,
                      [prepared(target, item) for item in corpus])
    assert round(tau, 4) == best["tau"] and tau >= 1.0
    assert_lossless(target, draft, draft.config.decode)
    result = json.loads((run / "result.json").read_text())["result"]
    assert result["predicted"] == provenance["predicted"]
    assert result["arch"]["decode"] == draft.config.decode.to_dict()
    # It trained on features cached on disk, where the supernet's training keeps them.
    assert any((tmp_path / "home" / "features").rglob("*.safetensors"))


def test_without_the_searchs_table_a_refinement_cannot_pick_a_shape_and_says_so(
        search, tmp_path, capsys):
    """The fixture's best.json names a table that is not there: one line, nothing written."""
    run = tmp_path / "export"
    assert export(f"search={search}", "refine=true", "data=shapes", "refine_steps=1",
                  "prompts=2", "max_new_tokens=4", "refinement.batch_size=2",
                  "refinement.loss.unroll_steps=2", f"run_dir={run}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "latency table" in err[0] and "validation_prompts=0" in err[0]
    assert not (run / "draft").exists()
