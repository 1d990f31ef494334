"""`draftnas search` end to end on a tiny VLM directory: reports in the run directory, best.json's
layout, a resumed study, and one-line exits for bad input."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny_llava_dir import save_tiny_llava
from tiny_tables import write_table

from hardware_profiles.device import current_device
from nas.cli import main
from nas.reports import BEST_FILE, SHAPES_FILE, TRIALS_FILE
from search_spaces import TargetDims, load_space
from specdec.shape import DecodeShape
from supernet import SuperDraft, SupernetMeta, save_supernet
from targets import load_target

SPACE = """\
name: small
dimensions:
  num_layers: [1, 2]
  num_heads: [0.5, 1.0]
  intermediate_size: [1.0, 2.0]
  interaction: [none, concat, cross_attention]
  injected_layers:
    - [top]
    - [1, top]
  vision_keep_ratio: [0.5, 1.0]
  draft_vocab_size: [0.5, full]
  decode: [chain 1, chain 2, tree 3/2/6]
"""
BEST_KEYS = {"trial", "arch", "predicted", "decode", "hardware_table", "supernet", "target",
             "space"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny LLaVA directory, a random supernet of a small space for it, its table; and a second
    target directory (another seed) for the mismatch checks."""
    root = tmp_path_factory.mktemp("search")
    target_dir = save_tiny_llava(root / "target")
    other_dir = save_tiny_llava(root / "other", seed=1)
    (root / "small.yaml").write_text(SPACE)
    target = load_target(str(target_dir))
    listed = load_space(root / "small.yaml")
    space, shapes = listed.resolve(TargetDims.of(target)), listed.decode
    superdraft = SuperDraft(space, target, list(range(target.vocab_size)))
    save_supernet(root / "train" / "supernet", superdraft,
                  SupernetMeta.of(superdraft, None, shapes))  # as draftnas train saves it
    table = write_table(root / "table.json", target, space, shapes)
    thin = write_table(root / "thin.json", target, space, shapes,
                       drop_heads=space.num_heads[0])
    # A table of the previous format (one decoding shape per table) must be remade.
    old = json.loads(table.read_text()) | {"version": 1}
    (root / "old.json").write_text(json.dumps(old))
    return {"root": root, "target": str(target_dir), "other": str(other_dir),
            "supernet": str(root / "train"), "table": str(table), "thin": str(thin),
            "old": str(root / "old.json"),
            "space": str(root / "small.yaml"), "fingerprint": target.fingerprint}


def args(setup, run_dir, *extra):
    return ["search", f"target={setup['target']}", f"supernet={setup['supernet']}",
            f"hardware.table={setup['table']}", "data=shapes", "validation_prompts=2",
            "max_new_tokens=8",
            f"run_dir={run_dir}", *extra]


def test_search_writes_reports_and_best_json(setup, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DRAFTNAS_HOME", str(setup["root"] / "home"))
    assert main(args(setup, tmp_path, "n_trials=6", f"search_space={setup['space']}")) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path / "result.json")
    trials = pd.read_csv(tmp_path / TRIALS_FILE)
    assert len(trials) == 6 and trials["trial"].is_unique
    assert {"tau", "latency_ms", "speedup", "pareto", "interaction"} <= set(trials.columns)
    assert set(trials["decode"]) <= {"chain 1", "chain 2", "tree 3/2/6"}
    best = json.loads((tmp_path / BEST_FILE).read_text())
    assert BEST_KEYS <= set(best)
    assert set(best["predicted"]) == {"tau", "latency_ms", "speedup"}
    assert best["target"] == {"spec": setup["target"], "fingerprint": setup["fingerprint"]}
    assert best["space"] == "small" and best["hardware_table"] == setup["table"]
    assert Path(best["supernet"]).name == "supernet"
    # The last stage decoded every shape of the best distinct drafts; the fastest by measured tau
    # is the answer.
    shapes = pd.read_csv(tmp_path / SHAPES_FILE)
    drafts = shapes.groupby("trial")
    assert len(drafts) >= 2 and all(len(rows) == 3 for _, rows in drafts)
    assert set(shapes["trial"]) <= set(trials["trial"])
    chosen = shapes[shapes["best"]].iloc[0]
    assert chosen["speedup"] == pytest.approx(shapes["speedup"].max())
    assert best["trial"] == chosen["trial"] and best["arch"]["decode"] == \
        DecodeShape.parse(chosen["decode"]).to_dict()
    assert best["predicted"]["tau"] == pytest.approx(chosen["tau"])
    assert best["decode"]["tau_source"] == "measured"
    assert best["decode"]["shape"] == chosen["decode"]
    # A chain's estimate is the decoder's schedule replayed: where a chain was a trial, the
    # decoder measured its tau (up to near-tied logits, as in tests/nas/test_estimator.py).
    for _, row in shapes[shapes["decode"].str.startswith("chain")].dropna().iterrows():
        assert row["tau"] == pytest.approx(row["estimated_tau"], rel=0.03)
    assert (tmp_path / "pareto.png").is_file() and (tmp_path / "importance.png").is_file()
    # The exported draft records the chosen shape as its recommended one, and why.
    export_dir = tmp_path / "export"
    assert main(["export", f"search={tmp_path}", f"run_dir={export_dir}"]) == 0
    config = json.loads((export_dir / "draft" / "config.json").read_text())
    assert config["decode"] == best["arch"]["decode"]
    assert config["provenance"]["decode"]["tau_source"] == "measured"
    # The same study continued to 8 completed trials: the first 6 are kept, none repeated;
    # without the last stage, the best trial (its estimated tau) is the answer.
    assert main(args(setup, tmp_path, "n_trials=8", "measured_shapes.drafts=0")) == 0
    trials = pd.read_csv(tmp_path / TRIALS_FILE)
    assert len(trials) == 8
    assert not trials.drop(columns=["trial"]).duplicated(
        subset=["interaction", "injected_layers", "num_layers", "num_heads", "intermediate_size",
                "vision_keep_ratio", "draft_vocab_size", "decode"]).any()
    best = json.loads((tmp_path / BEST_FILE).read_text())
    assert best["decode"]["tau_source"] == "estimated" and not (tmp_path / SHAPES_FILE).exists()
    assert best["predicted"]["speedup"] == pytest.approx(trials["speedup"].max())


@pytest.mark.parametrize("bad, names", [
    ("target", "trained for target"),
    ("thin", "no layer entry"),
    ("old", "fresh=true"),
    ("storage", "searcher.storage"),
    ("space", "trained for search space"),
])
def test_bad_input_exits_2_with_one_line(setup, tmp_path, capsys, monkeypatch, bad, names):
    monkeypatch.setenv("DRAFTNAS_HOME", str(setup["root"] / "home"))
    extra = {"target": [f"target={setup['other']}"],
             "thin": [f"hardware.table={setup['thin']}"],
             "old": [f"hardware.table={setup['old']}"],
             "storage": [f"searcher.storage=sqlite:///{tmp_path}/missing/dir/study.db"],
             "space": ["search_space=eagle"]}[bad]
    assert main(args(setup, tmp_path / "run", "n_trials=2", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and names in err, err


def test_a_truncated_supernet_exits_2_naming_the_file(setup, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DRAFTNAS_HOME", str(setup["root"] / "home"))
    supernet = shutil.copytree(Path(setup["supernet"]) / "supernet", tmp_path / "supernet")
    weights = supernet / "supernet.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    argv = [arg if not arg.startswith("supernet=") else f"supernet={supernet}"
            for arg in args(setup, tmp_path / "run", "n_trials=2")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(weights) in err and "safetensors" in err, err


def test_without_a_table_name_it_finds_the_table_of_this_target_and_device(setup, tmp_path,
                                                                          monkeypatch):
    """A plain search after a profile (or a pipeline) reads that table: found by the target's
    fingerprint and this device among $DRAFTNAS_HOME/tables, whatever its name."""
    home = tmp_path / "home"
    monkeypatch.setenv("DRAFTNAS_HOME", str(home))
    here = current_device("cpu", torch.float32, 1, "fp16")  # quantize=auto serves fp16 on CPU
    table = json.loads(Path(setup["table"]).read_text()) | {"device": here.to_dict()}
    (home / "tables").mkdir(parents=True)
    (home / "tables" / "any-name.json").write_text(json.dumps(table))
    run = ["search", f"target={setup['target']}", f"supernet={setup['supernet']}",
           "data=shapes", "validation_prompts=2", "max_new_tokens=8", "n_trials=2",
           "measured_shapes.drafts=0"]
    assert main([*run, f"run_dir={tmp_path / 'run'}"]) == 0
    best = json.loads((tmp_path / "run" / BEST_FILE).read_text())
    assert best["hardware_table"] == str(home / "tables" / "any-name.json")
    (home / "tables" / "any-name.json").unlink()
    assert main([*run, f"run_dir={tmp_path / 'none'}"]) == 2
