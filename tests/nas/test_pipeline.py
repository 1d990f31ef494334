"""`draftnas pipeline` end to end on a tiny 4-layer LLaVA directory with the smallest settings:
every stage runs and the summary is written; a rerun skips every stage; a deleted stage reruns
alone."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from tiny_llava_dir import save_tiny_llava
from transformers import AutoConfig, LlavaForConditionalGeneration

from nas.cli import main

STAGES = ["01-target", "02-train", "03-profile", "04-search", "05-export", "06-train-eagle",
          "07-train-dream", "08-bench"]
# The smallest run that still touches every stage (the profile measures one short context).
TINY = [
    "budget=smoke", "dtype=float32", "prompts=2", "calibration_prompts=2", "max_new_tokens=8", "train.steps=1",
    "train.batch_size=1", "train.checkpoint_every=1", "train.sandwich.random_subnets=0",
    ("overrides.profile=['hardware.contexts=[64]','hardware.warmup=0','hardware.repeats=1',"
    "'hardware.budget_s=0.01','hardware.flush_mb=0','hardware.threads=1']"),
    "overrides.search=['n_trials=2','validation_prompts=1','max_new_tokens=8']",
    ("overrides.bench=['n_prompts=1','max_new_tokens=8','assistant.steps=2',"
    "'assistant.train_prompts=2','prompts=shapes','assistant.response_tokens=8','warmup=false',"
    "'repeats=1']"),
]


def save_deep_tiny_llava(directory: Path) -> Path:
    """The tiny LLaVA with 4 text layers: dream_s and dream rank intermediate layers by entropy,
    which a 2-layer target does not have."""
    save_tiny_llava(directory)
    config = AutoConfig.from_pretrained(directory, trust_remote_code=False)
    config.text_config.num_hidden_layers = 4
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory) -> tuple[Path, list[str]]:
    base = tmp_path_factory.mktemp("pipeline")
    target = save_deep_tiny_llava(base / "target")
    args = ["pipeline", f"target={target}", f"run_dir={base / 'run'}",
            f"tables_dir={base / 'tables'}", *TINY]
    (base / "tables").mkdir()
    assert main(args) == 0
    return base / "run", args


def result_times(run_dir: Path) -> dict[str, int]:
    return {stage: (run_dir / stage / "result.json").stat().st_mtime_ns for stage in STAGES}


def test_runs_every_stage_and_summarises_the_bench(pipeline_run, capsys):
    run_dir, _ = pipeline_run
    result = json.loads((run_dir / "result.json").read_text())["result"]
    assert list(result["stages"]) == STAGES
    methods = [row["method"] for row in result["summary"]]
    assert methods[0] == "vanilla" and len(methods) == 6
    for name in ("searched", "eagle", "dream"):
        assert any(f"draft:{name}" in method for method in methods), methods
    # No table of this target ships, so the pipeline profiled into tables_dir.
    table = Path(result["latency_table"])
    # its overrides.profile are quicker than a full profile: a table only smoke runs reuse
    assert table.parent == run_dir.parent / "tables" and table.name.endswith("-smoke.json")
    # No threads= for the bench above: it times with the table's (1, not its default 2).
    bench = json.loads((run_dir / "08-bench" / "result.json").read_text())["result"]
    assert bench["threads"] == json.loads(table.read_text())["device"]["threads"]
    summary = (run_dir / "summary.md").read_text()
    assert ("| method | tokens/s | speedup | speedup after prefill | tau | equals vanilla |"
            in summary)
    assert all(method in summary for method in methods)
    assert "![bench](08-bench/bench.png)" in summary and (run_dir / "08-bench/bench.png").is_file()


def test_rerun_skips_every_stage(pipeline_run, capsys):
    run_dir, args = pipeline_run
    before = result_times(run_dir)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert all(f"{stage}: done before, skipped" in out for stage in STAGES)
    assert result_times(run_dir) == before


def test_a_deleted_stage_reruns_alone(pipeline_run, capsys):
    run_dir, args = pipeline_run
    before = result_times(run_dir)
    shutil.rmtree(run_dir / "05-export")
    assert main(args) == 0
    after = result_times(run_dir)
    assert [stage for stage in STAGES if after[stage] != before[stage]] == ["05-export"]
    assert "05-export: finished in" in capsys.readouterr().out


def test_unknown_stage_in_overrides_exits_2(tmp_path, capsys):
    assert main(["pipeline", f"run_dir={tmp_path}", "overrides.serve=[x]"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("draftnas pipeline: error:") and "serve" in err and len(err.splitlines()) == 1


def test_a_matching_table_is_used_instead_of_profiling(pipeline_run, capsys):
    run_dir, args = pipeline_run
    before = result_times(run_dir)
    table = json.loads((run_dir / "03-profile" / "result.json").read_text())["result"]["table"]
    shutil.rmtree(run_dir / "03-profile")
    assert main(args) == 0
    assert "matches this target and device, not profiling" in capsys.readouterr().out
    result = json.loads((run_dir / "03-profile" / "result.json").read_text())["result"]
    assert result == {"table": table, "profiled": False}
    after = result_times(run_dir)
    assert [stage for stage in STAGES if after[stage] != before[stage]] == ["03-profile"]


@pytest.mark.parametrize("budget, preset, expected", [
    ("smoke", None, "smoke"), ("default", None, "full"), ("smoke", "full", "full")])
def test_each_budget_picks_its_shapes_build_unless_the_environment_did(monkeypatch, budget,
                                                                       preset, expected):
    from types import SimpleNamespace

    from nas.commands.pipeline import SHAPES_BUDGET_ENV, choose_shapes_build

    monkeypatch.delenv(SHAPES_BUDGET_ENV, raising=False)
    if preset:
        monkeypatch.setenv(SHAPES_BUDGET_ENV, preset)
    cfg = SimpleNamespace(target="shapes", budget_name=budget,
                          shapes_build={"smoke": "smoke", "default": "full"})
    choose_shapes_build(cfg)
    assert os.environ[SHAPES_BUDGET_ENV] == expected
