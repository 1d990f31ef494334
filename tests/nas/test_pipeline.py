"""`draftnas pipeline` end to end on a tiny 4-layer LLaVA directory and the example data set (a
JSONL with images), with the smallest settings, in directories whose names hold every character
Hydra's override grammar gives a meaning to: every stage runs, the target loads once, each stage
reads its own split of the data, the summary is written; a rerun skips every stage and counts
their time; a deleted stage reruns alone. And every stage's config, composed from the real configs
as the pipeline builds it."""

import json
import re
import shlex
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from tiny_llava_dir import save_tiny_llava
from transformers import AutoConfig, LlavaForConditionalGeneration

from hardware_profiles.table_store import SHIPPED_DIR, TableStore
from nas import run_context
from nas.cli import main
from nas.commands import command_config, command_module
from nas.commands import pipeline as pipeline_command
from nas.commands.pipeline import stages
from nas.run_context import RunContext
from userdata import DataConfig, UserData

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_data" / "prompts.jsonl"
STAGES = ["01-target", "02-train", "03-profile", "04-search", "05-export", "06-train-eagle",
          "07-train-dream", "08-train-specllava", "09-bench"]
# Characters that break an override parsed unquoted (issue 15): a run directory may hold them all.
ODD = "my runs,1 =[x] (y) #{z} ~"
# The smallest run that still touches every stage (the profile measures one short context).
TINY = [
    "budget=smoke", "dtype=float32", "prompts=2", "calibration_prompts=2", "max_new_tokens=8", "train.steps=1",
    "train.batch_size=1", "train.checkpoint_every=1", "train.sandwich.random_subnets=0",
    ("overrides.profile=['hardware.contexts=[64]','hardware.warmup=0','hardware.repeats=1',"
    "'hardware.budget_s=0.01','hardware.flush_mb=0','hardware.threads=1']"),
    "overrides.search=['n_trials=2','validation_prompts=1','max_new_tokens=8']",
    ("overrides.bench=['n_prompts=1','max_new_tokens=8','assistant.steps=2',"
    "'assistant.train_prompts=2','assistant.response_tokens=8','warmup=false',"
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
def pipeline_run(tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    base = tmp_path_factory.mktemp("pipeline") / ODD
    target = save_deep_tiny_llava(base / "target")
    args = ["pipeline", f"target='{target}'", f"data={EXAMPLE}", f"run_dir='{base / 'run'}'",
            f"tables_dir='{base / 'tables'}'", *TINY]
    loads = []

    def counted(spec, **kwargs):
        loads.append((spec, kwargs["quantize"]))
        return load_target(spec, **kwargs)

    load_target = run_context.load_target
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_context, "load_target", counted)
        assert main(args) == 0
    return base / "run", args, loads


def result_times(run_dir: Path) -> dict[str, int]:
    return {stage: (run_dir / stage / "result.json").stat().st_mtime_ns for stage in STAGES}


def test_runs_every_stage_and_summarises_the_bench(pipeline_run, capsys):
    run_dir, _, loads = pipeline_run
    # One load per target, device, dtype and runtime: the training stages read the weights as
    # stored, the stages that decode or time the target serve it in the CPU's runtime (auto).
    assert sorted(quantize for _, quantize in loads) == ["fp16", "none"]
    assert len({spec for spec, _ in loads}) == 1
    result = json.loads((run_dir / "result.json").read_text())["result"]
    assert list(result["stages"]) == STAGES
    methods = [row["method"] for row in result["summary"]]
    assert methods[0] == "vanilla" and len(methods) == 7
    for name in ("searched", "eagle", "dream", "specllava"):
        assert any(f"draft:{name}" in method for method in methods), methods
    # On a VLM each draft row says what the draft reads at image positions.
    assert any("draft:specllava [image features]" in method for method in methods), methods
    assert any("draft:eagle [image placeholders]" in method for method in methods), methods
    # No table of this target ships, so the pipeline profiled into tables_dir.
    table = Path(result["latency_table"])
    # its overrides.profile are quicker than a full profile: a table only smoke runs reuse
    assert table.parent == run_dir.parent / "tables" and table.name.endswith("-smoke.json")
    # No threads= for the bench above: it times with the table's (1, not its default 2).
    bench = json.loads((run_dir / "09-bench" / "result.json").read_text())["result"]
    assert bench["threads"] == json.loads(table.read_text())["device"]["threads"]
    summary = (run_dir / "summary.md").read_text()
    assert ("| method | tokens/s | speedup | speedup after prefill | tau | equals vanilla |"
            in summary)
    assert all(method in summary for method in methods)
    assert "![bench](09-bench/bench.png)" in summary and (run_dir / "09-bench/bench.png").is_file()


def test_each_stage_reads_its_own_split_of_the_data(pipeline_run):
    """Training reads the data file's train split, the search its validation split, the bench its
    test split; the result files say which rows, and no row is in two of them."""
    run_dir, _, _ = pipeline_run
    used = {stage: json.loads((run_dir / stage / "result.json").read_text())["result"]["data"]
            for stage in ("02-train", "04-search", "09-bench")}
    splits = UserData(DataConfig(source=str(EXAMPLE)), "my target").splits.records
    rows = {split: {record.row for record in records} for split, records in splits.items()}
    for stage, split in (("02-train", "train"), ("04-search", "validation"), ("09-bench", "test")):
        assert used[stage]["source"] == str(EXAMPLE)
        assert set(used[stage]["splits"][split]["rows"]) <= rows[split], stage
    bench = used["09-bench"]["splits"]
    assert bench["test"]["rows"] == [record.row for record in splits["test"]][:1]  # n_prompts=1
    assert not rows["train"] & rows["validation"] and not rows["test"] & (rows["train"] |
                                                                           rows["validation"])


def test_a_target_of_your_own_without_data_fails_at_the_start(tmp_path, capsys):
    target = save_tiny_llava(tmp_path / "target")
    capsys.readouterr()  # saving may draw transformers' progress bar (when run alone)
    assert main(["pipeline", f"target={target}", f"run_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data=" in err and "no prompt set of its own" in err
    assert not (tmp_path / "run" / "01-target").exists()  # before any stage


def test_rerun_skips_every_stage_and_counts_their_time(pipeline_run, capsys):
    run_dir, args, _ = pipeline_run
    before = result_times(run_dir)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert all(f"{stage}: done before, skipped" in out for stage in STAGES)
    assert result_times(run_dir) == before
    # The whole run's time, not the resumed part's: the stages' recorded durations.
    took = [json.loads((run_dir / stage / "result.json").read_text())["seconds"]
            for stage in STAGES]
    total = json.loads((run_dir / "result.json").read_text())["result"]["total_seconds"]
    assert total == pytest.approx(sum(took), abs=0.1) and total > 1
    # The summary's minutes are the stages' sum (result.json rounds it to 0.1 s: 9.04 s reads
    # 0.2 min in the summary and 0.1 from the rounded 9.0).
    assert f"pipeline {sum(took) / 60:.1f} min" in (run_dir / "summary.md").read_text()


def test_a_deleted_stage_reruns_alone(pipeline_run, capsys):
    run_dir, args, _ = pipeline_run
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
    run_dir, args, _ = pipeline_run
    before = result_times(run_dir)
    table = json.loads((run_dir / "03-profile" / "result.json").read_text())["result"]["table"]
    shutil.rmtree(run_dir / "03-profile")
    assert main(args) == 0
    assert "matches this target and device, not profiling" in capsys.readouterr().out
    result = json.loads((run_dir / "03-profile" / "result.json").read_text())["result"]
    assert (result["table"], result["profiled"], result["measured"]) == (table, False, None)
    after = result_times(run_dir)
    assert [stage for stage in STAGES if after[stage] != before[stage]] == ["03-profile"]


@pytest.fixture
def finished(tmp_path) -> dict:
    """What the stages before the search, export and bench return, as far as those read it."""
    drafts = {}
    for stage in ("05-export", "06-train-eagle", "07-train-dream", "08-train-specllava"):
        (tmp_path / stage / "draft").mkdir(parents=True)
        (tmp_path / stage / "draft" / "config.json").write_text("{}")
        drafts[stage] = SimpleNamespace(draft=str(tmp_path / stage / "draft"))
    # A shipped table, measured with 1 CPU thread; shapes' vocabulary.
    return {"01-target": SimpleNamespace(vocab_size=300),
            "03-profile": SimpleNamespace(table=str(SHIPPED_DIR / "cpu-shapes.json")), **drafts}


@pytest.mark.parametrize("budget, environment, build, trials", [
    ("smoke", None, "smoke", 40), ("default", None, "full", 200), ("long", None, "full", 500),
    ("smoke", "full", "full", 40)])  # $DRAFTNAS_SHAPES_BUDGET wins over the budget's build
def test_every_stage_config_is_its_commands_own_as_the_pipeline_builds_it(
        tmp_path, finished, budget, environment, build, trials):
    run_dir = tmp_path / ODD / "run"
    cfg = replace(command_config("pipeline", [f"budget={budget}", "data=my.jsonl",
                                              "data.responses=given",
                                              "overrides.search=['seed=7']"]), run_dir=run_dir)
    ctx = RunContext(tmp_path / "home", TableStore(tmp_path / "tables"), environment)
    plan = stages(cfg, ctx)
    assert [stage.name for stage in plan] == STAGES
    configs = {stage.name: stage.config(finished) for stage in plan}
    for stage in plan:
        config = configs[stage.name]
        assert type(config) is command_module(stage.command).Config
        OmegaConf.structured(config)  # every value fits the command's schema
        assert (config.target, config.device, config.dtype, config.run_dir) == \
            (f"shapes:{build}", "cpu", "float32", None)
        # The data reaches every stage that reads prompts.
        assert getattr(config, "data", cfg.data) == DataConfig(source="my.jsonl",
                                                               responses="given")
        # The runtime reaches the stages that decode or time the target; training has none.
        assert getattr(config, "quantize", None) == (
            None if stage.command in ("train", "export") else "auto")
    for name, space in (("02-train", "dream_s"), ("06-train-eagle", "eagle"),
                        ("07-train-dream", "dream"), ("08-train-specllava", "specllava")):
        train = configs[name]
        assert (train.search_space, train.resume, train.budget_name) == (space, True, budget)
        assert (train.train, train.prompts, train.max_new_tokens) == \
            (cfg.train, cfg.prompts, cfg.max_new_tokens)
    profile = configs["03-profile"]
    assert profile.reuse and profile.tag == ("smoke" if budget == "smoke" else None)
    assert profile.hardware.repeats == (5 if budget == "smoke" else 15)
    search = configs["04-search"]
    assert (search.supernet, search.hardware.table) == (run_dir / "02-train",
                                                        finished["03-profile"].table)
    assert (search.n_trials, search.seed) == (trials, 7)
    export = configs["05-export"]
    assert export.search == run_dir / "04-search" and export.refine == (budget == "long")
    bench = configs["09-bench"]
    assert bench.drafts == [run_dir / "drafts" / name
                            for name in ("searched", "eagle", "dream", "specllava")]
    assert all((draft / "config.json").is_file() for draft in bench.drafts)
    assert bench.threads == 1  # the table's


@pytest.mark.parametrize("device, vocab_size, chosen", [
    ("cpu", 300, "dream_s"), ("cpu", 32767, "dream_s"), ("cpu", 32768, "dream_s_cpu"),
    ("cpu", 49152, "dream_s_cpu"), ("cuda", 49152, "dream_s"), ("cuda:1", 151936, "dream_s")])
def test_auto_trains_the_part_of_dream_s_the_device_serves(tmp_path, finished, device,
                                                          vocab_size, chosen):
    """search_space=auto: dream_s_cpu on a CPU with a large vocabulary, dream_s elsewhere; the
    user's space as given, and the fixed baselines' spaces whatever it is."""
    done = {**finished, "01-target": SimpleNamespace(vocab_size=vocab_size)}
    ctx = RunContext(tmp_path / "home", TableStore(tmp_path / "tables"), None)
    for space, expected in (("auto", chosen), ("my space.yaml", "my space.yaml")):
        cfg = replace(command_config("pipeline", [f"device={device}", f"search_space={space}"]),
                      run_dir=tmp_path / "run")
        configs = {stage.name: stage.config(done) for stage in stages(cfg, ctx)}
        assert configs["02-train"].search_space == expected
        assert configs["06-train-eagle"].search_space == "eagle"


@pytest.mark.parametrize("device, vocab_size, overrides, steps", [
    ("cpu", 49152, [], 480), ("cpu", 32768, ["overrides.train=['threads=2','prompts=9','train.steps=60']"], 120),
    ("cpu", 49152, ["winner_steps=0"], 0), ("cpu", 300, [], 0), ("cuda", 49152, [], 0),
    ("cpu", 300, ["winner_steps=7"], 7),
    ("cpu", 49152, ["overrides.export=['refine_steps=5','refinement.lr=1e-4']"], 5)])
def test_on_a_cpu_with_a_large_vocabulary_the_winner_trains_alone_after_the_search(
        tmp_path, finished, device, vocab_size, overrides, steps):
    """The export stage refines the searched draft for twice the supernet's steps there (none
    elsewhere, winner_steps= sets it), as the supernet trained: its corpus, threads, batch, lr
    schedule and loss; the user's overrides.export win."""
    done = {**finished, "01-target": SimpleNamespace(vocab_size=vocab_size)}
    cfg = replace(command_config("pipeline", [
        "budget=default", f"device={device}", "overrides.train=['threads=2','prompts=9']",
        *overrides]), run_dir=tmp_path / "run")
    configs = {stage.name: stage.config(done)
               for stage in stages(cfg, RunContext(tmp_path / "home",
                                                   TableStore(tmp_path / "tables"), None))}
    export = configs["05-export"]
    assert export.refine == bool(steps) and (not steps or export.refine_steps == steps)
    if not steps:
        return
    train = configs["02-train"]
    assert (export.prompts, export.max_new_tokens, export.threads) == \
        (train.prompts, train.max_new_tokens, train.threads) == (9, cfg.max_new_tokens, 2)
    refinement = export.refinement
    assert (refinement.batch_size, refinement.warmup_steps, refinement.min_lr_ratio,
            refinement.checkpoint_every, refinement.loss) == (
        train.train.batch_size, train.train.warmup_steps, train.train.min_lr_ratio,
        train.train.checkpoint_every, train.train.loss)
    assert refinement.lr == (1e-4 if "refinement.lr=1e-4" in str(overrides) else train.train.lr)
    assert export.validation_prompts > 0  # its shape is chosen again


def test_the_users_train_overrides_win_over_the_budgets_keys(tmp_path, finished):
    """overrides.train=['train.steps=40'] trains 40 steps in every train stage (the budget's
    train block used to replace it silently); the budget's other keys stay."""
    cfg = replace(command_config("pipeline", [
        "budget=default", "overrides.train=['train.steps=40','prompts=9','data=my.jsonl']"]),
        run_dir=tmp_path / "run")
    plan = stages(cfg, RunContext(tmp_path / "home", TableStore(tmp_path / "tables"), None))
    for stage in plan:
        if stage.command == "train":
            train = stage.config(finished)
            assert (train.train.steps, train.prompts, train.data.source) == (40, 9, "my.jsonl")
            assert (train.train.batch_size, train.max_new_tokens) == (cfg.train.batch_size,
                                                                      cfg.max_new_tokens)
    assert cfg.train.steps == 240


def test_on_a_gpu_the_profile_times_as_the_gpu_hardware_group_says(tmp_path):
    cfg = replace(command_config("pipeline", ["device=cuda", "dtype=bfloat16"]),
                  run_dir=tmp_path)
    ctx = RunContext(tmp_path / "home", TableStore(tmp_path / "tables"))
    profile = stages(cfg, ctx)[2].config({})
    assert (profile.device, profile.dtype) == ("cuda", "bfloat16")
    assert (profile.hardware.repeats, profile.hardware.flush_mb) == (50, 0)


def test_the_documented_override_example_works_as_a_shell_passes_it(tmp_path):
    """pipeline --help and conf/pipeline.yaml show the same example; typed in a shell, it sets
    the search stage's keys."""
    conf = Path(__file__).resolve().parents[2] / "conf" / "pipeline.yaml"
    for text in (pipeline_command.__doc__, conf.read_text()):
        example = re.search(r'"overrides\.search=\[.*?\]"', text).group(0)
        cfg = replace(command_config("pipeline", shlex.split(example)), run_dir=tmp_path)
        ctx = RunContext(tmp_path / "home", TableStore(tmp_path / "tables"))
        search = stages(cfg, ctx)[3].config({"03-profile": SimpleNamespace(table="t.json")})
        assert search.n_trials == 10, example
