"""`draftnas bench` and specdec.bench: stats of transformers' baselines, the efficiency ratio,
peak memory, the cached assistant, and a whole bench on a tiny VLM with every method."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image
from transformers import LlamaConfig, LlamaForCausalLM

from nas.cli import main
from specdec import DecodeStats, DraftConfig, DraftModel
from specdec.bench import assistant as assistant_module
from specdec.bench.assistant import AssistantConfig, ensure_assistant
from specdec.bench.hf_forwards import ForwardLog, _Call
from specdec.bench.memory import read_peak_rss, reset_peak_rss
from specdec.bench.methods import (
    MethodRun,
    Sampling,
    TransformersMethod,
    draft_method,
    draft_names,
    prompt_lookup_method,
    vanilla_method,
)
from specdec.bench.report import write_report
from specdec.bench.runner import BenchSettings, median_round, run_bench
from specdec.bench.summary import MethodResult, PeakRss, summarize
from specdec.recommended import ShapeKeys
from targets import PreparedInputs, load_target
from targets.tiny import tiny_inputs, tiny_target

TINY_ASSISTANT = ["assistant.steps=3", "assistant.train_prompts=2", "assistant.response_tokens=4",
                  "assistant.hidden_size=32", "assistant.num_heads=2",
                  "assistant.intermediate_size=64", "assistant.batch_size=2"]


@pytest.fixture(scope="module")
def llava_draft(llava_dir, tmp_path_factory) -> Path:
    target = load_target(str(llava_dir))
    draft = DraftModel.random(DraftConfig.for_target(target), target)
    return draft.save_pretrained(tmp_path_factory.mktemp("draft") / "random")


def test_forward_log_turns_cache_lengths_into_steps():
    log = ForwardLog(torch.nn.Identity())
    # Prompt of 10 tokens; the prefill emits 1 token, then steps emit 1, 3 and 2 tokens.
    log.calls = [_Call(0, 10, 0.5), _Call(10, 3, 0.1), _Call(11, 4, 0.1), _Call(14, 3, 0.1)]
    stats = log.stats(prompt_tokens=10, new_tokens=7, seconds=1.0)
    assert stats.steps == 3 and stats.step_tokens == 6 and stats.tau == 2.0
    assert stats.acceptance_by_depth == [2 / 3, 1 / 3]
    assert stats.draft_tokens == 2 + 3 + 2
    assert stats.time_prefill == 0.5 and stats.time_target == pytest.approx(0.8)


def test_plain_transformers_generate_is_one_token_per_forward_and_equals_vanilla():
    target = tiny_target("llama")
    prompt = tiny_inputs(target, seed=3)
    plain = TransformersMethod("generate", "plain", target, {}).run(prompt, Sampling(9))
    ours = vanilla_method(target).run(prompt, Sampling(9))
    assert plain.token_ids == ours.token_ids and len(plain.token_ids) == 9
    assert plain.stats.steps == 8 and plain.stats.tau == 1.0
    assert plain.stats.acceptance_by_depth == []  # nothing drafted, nothing accepted


def run_of(new_tokens: int, steps: int, step_tokens: int, target: float, draft: float,
           prefill: float, total: float) -> MethodRun:
    stats = DecodeStats(new_tokens=new_tokens, steps=steps, step_tokens=step_tokens,
                        time_target=target, time_draft=draft, time_prefill=prefill,
                        time_total=total)
    return MethodRun(list(range(new_tokens)), stats)


def test_efficiency_ratio_is_computed_and_reported(tmp_path):
    # Vanilla: 10 decode forwards of 0.1 s each -> T_target(1) = 0.1 s; 11 tokens in 1.2 s.
    vanilla = run_of(11, 10, 10, target=1.1, draft=0.0, prefill=0.1, total=1.2)
    # Draft: tau 2.5, steps of 0.15 s (draft + verify), 11 tokens in 0.8 s.
    drafted = run_of(11, 4, 10, target=0.5, draft=0.2, prefill=0.1, total=0.8)
    peak = PeakRss(100.0, True)
    rows = summarize([MethodResult("vanilla", "vanilla", [vanilla], peak),
                      MethodResult("draft:x", "draft", [drafted], peak)], sampling=False)
    speedup = (11 / 0.8) / (11 / 1.2)
    assert rows[1]["speedup"] == pytest.approx(speedup)
    assert rows[1]["t_step_ms"] == pytest.approx(150.0) and rows[0]["t_step_ms"] == pytest.approx(100.0)
    assert rows[1]["efficiency"] == pytest.approx(speedup / (2.5 * 0.1 / 0.15))
    # After the prefill: 10 tokens in 1.1 s (vanilla) and in 0.7 s (draft).
    assert rows[1]["decode_speedup"] == pytest.approx((10 / 0.7) / (10 / 1.1))
    assert rows[0]["decode_speedup"] == pytest.approx(1.0)
    assert rows[0]["efficiency"] is None and rows[1]["equals_vanilla"] is True
    files = write_report(rows, tmp_path, "synthetic")
    assert f"| {rows[1]['efficiency']:.3g} |" in files["md"].read_text()
    assert pd.read_csv(files["csv"])["efficiency"].iloc[1] == pytest.approx(rows[1]["efficiency"])


def test_repeated_rounds_keep_the_median_time_and_the_highest_peak():
    rounds = [MethodResult("draft:x", "draft", [run_of(11, 4, 10, 0.5, 0.2, 0.1, total)],
                           PeakRss(mib, True))
              for total, mib in ((0.9, 100.0), (3.0, 300.0), (0.8, 200.0))]
    chosen = median_round(rounds)
    assert chosen.runs[0].stats.time_total == 0.9 and chosen.peak_rss.mib == 300.0


class LoggedMethod:
    """A method that records which prompt (its first token id) and seed each call got, and
    holds `mib` MiB of fresh memory during its runs of prompt `grows_on`."""

    def __init__(self, name: str, log: list, grows_on: int = -1, mib: int = 0):
        self.name, self.log, self.grows_on, self.mib = name, log, grows_on, mib
        self.kind = "vanilla" if name == "vanilla" else "draft"

    def run(self, prompt, sampling: Sampling) -> MethodRun:
        first = int(prompt.input_ids[0, 0])
        self.log.append((self.name, first, sampling.seed))
        if first == self.grows_on:
            held = torch.ones(self.mib * 2**18)  # float32: 4 bytes an entry
            held.add_(1)
        return run_of(3, 2, 2, target=0.02, draft=0.0, prefill=0.01, total=0.03)


def test_methods_take_turns_prompt_by_prompt_with_one_seed_per_prompt():
    """A drift of the machine's speed must hit every method alike, and each method keeps the
    highest peak memory of its own runs."""
    log: list = []
    methods = [LoggedMethod("vanilla", log), LoggedMethod("a", log, grows_on=12, mib=256),
               LoggedMethod("b", log)]
    no_images = torch.zeros(1, 3, dtype=torch.bool)
    prompts = [PreparedInputs(torch.tensor([[first, 1, 2]]), {}, no_images)
               for first in (11, 12, 13)]
    settings = BenchSettings(Sampling(3, seed=5), threads=1, warmup=False, progress=False,
                             repeats=2)
    rows = run_bench(methods, prompts, settings)
    turns = [(name, first, seed) for first, seed in ((11, 5), (12, 6), (13, 7))
             for name in ("vanilla", "a", "b")]
    assert log == turns * 2
    peaks = {row["method"]: row["peak_rss_mib"] for row in rows}
    if rows[0]["peak_rss_since_reset"]:
        assert peaks["a"] >= peaks["b"] + 200


def test_sampled_runs_are_not_compared_with_vanilla():
    run = run_of(3, 2, 2, 0.3, 0.0, 0.1, 0.3)
    peak = PeakRss(1.0, True)
    rows = summarize([MethodResult("vanilla", "vanilla", [run], peak),
                      MethodResult("d", "draft", [run], peak)], sampling=True)
    assert [row["equals_vanilla"] for row in rows] == [None, None]


def test_peak_rss_covers_memory_touched_after_the_reset():
    since_reset = reset_peak_rss()
    block = bytearray(64 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    peak = read_peak_rss(since_reset)
    assert peak.since_reset == since_reset and peak.mib >= 64
    del block


def test_assistant_is_built_once_per_target_and_recipe(tmp_path, monkeypatch):
    target = tiny_target("llama")
    prompts = [tiny_inputs(target, seed=10 + i) for i in range(2)]
    cfg = AssistantConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32,
                          steps=2, response_tokens=3, batch_size=2)
    first = ensure_assistant(target, prompts, cfg, home=tmp_path)
    assert first.config.vocab_size == target.vocab_size
    monkeypatch.setattr(assistant_module, "distill", lambda *args: pytest.fail("rebuilt"))
    again = ensure_assistant(target, prompts, cfg, home=tmp_path)
    assert torch.equal(again.get_input_embeddings().weight, first.get_input_embeddings().weight)
    other = assistant_module.assistant_key(target, prompts, AssistantConfig(steps=3))
    assert other != assistant_module.assistant_key(target, prompts, cfg)
    assert [path.name for path in (tmp_path / "assistants").iterdir()] == [
        assistant_module.assistant_key(target, prompts, cfg)]


def test_bench_on_a_tiny_vlm_runs_every_method_and_all_equal_vanilla(
        capsys, tmp_path, monkeypatch, llava_dir, llava_draft):
    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    run_dir = tmp_path / "run"
    code = main(["bench", f"target={llava_dir}", "data=shapes", "n_prompts=2",
                 "max_new_tokens=6", f"drafts=[{llava_draft}]", "threads=1",
                 f"run_dir={run_dir}", *TINY_ASSISTANT])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[-1] == str(run_dir / "result.json")
    table = pd.read_csv(run_dir / "bench.csv")
    assert table["kind"].tolist() == ["vanilla", "assisted", "prompt_lookup", "draft"]
    assert table["equals_vanilla"].tolist() == [True] * 4
    assert (table["new_tokens"] >= 2).all() and (table["tau"] >= 1).all()
    assert table["efficiency"].notna().tolist() == [False, False, False, True]
    assert (run_dir / "bench.png").stat().st_size > 0
    assert "| vanilla |" in (run_dir / "bench.md").read_text()
    result = json.loads((run_dir / "result.json").read_text())["result"]
    assert [row["kind"] for row in result["rows"]] == table["kind"].tolist()
    assert result["prompts"] == 2 and result["prompt_set"] == "shapes"


@pytest.mark.parametrize("overrides, words", [
    ([], ["data", "no prompt set of its own", "data=<"]),
    (["baselines=[medusa]"], ["baselines", "medusa"]),
    (["drafts=[/no/such/draft]"], ["drafts", "/no/such/draft"]),
    (["temperature=nan"], ["temperature", "nan", "finite"]),
    (["temperature=inf"], ["temperature", "inf", "finite"]),
])
def test_bad_bench_input_exits_2_with_one_line(capsys, tmp_path, llava_dir, overrides, words):
    code = main(["bench", f"target={llava_dir}", f"run_dir={tmp_path}", *overrides])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("draftnas bench: error: ")
    for word in words:
        assert word in err


def test_a_draft_for_another_target_exits_2_before_the_assistant_trains(
        capsys, tmp_path, monkeypatch, llava_dir):
    other = tiny_target("llava_clip", seed=7)
    foreign = DraftModel.random(DraftConfig.for_target(other), other).save_pretrained(
        tmp_path / "foreign")
    monkeypatch.setattr(assistant_module, "distill", lambda *args: pytest.fail("trained"))
    code = main(["bench", f"target={llava_dir}", "data=shapes", f"drafts=[{foreign}]",
                 f"run_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "fingerprint" in err


def test_drafts_are_named_after_their_run_not_their_draft_folder(tmp_path):
    """`draftnas export` and `train` both write <run>/draft: two of them are not draft:draft."""
    paths = [tmp_path / "qwen-export" / "draft", tmp_path / "eagle" / "draft",
             tmp_path / "mine", tmp_path / "other" / "mine", tmp_path / "again" / "mine"]
    assert draft_names(paths) == ["qwen-export", "eagle", "mine", "mine#2", "mine#3"]


def test_sampling_runs_every_method_and_compares_nothing_with_vanilla(tmp_path, llava_dir,
                                                                        llava_draft):
    target = load_target(str(llava_dir))
    prompts = [target.prepare(prompt="what shape is it", images=[Image.new("RGB", (16, 16))])]
    methods = [vanilla_method(target), prompt_lookup_method(target, 3),
               draft_method(target, llava_draft, ShapeKeys(mode="chain", k=2), adaptive=True)]
    settings = BenchSettings(Sampling(5, temperature=1.0, top_p=0.9, seed=1), threads=1,
                             warmup=False, progress=False)
    rows = run_bench(methods, prompts, settings)
    assert [row["equals_vanilla"] for row in rows] == [None, None, None]
    assert all(1 <= row["new_tokens"] <= 5 for row in rows)


@pytest.mark.parametrize("vocab_size, width, projected", [(128, 16, True), (24, 28, False)])
def test_assistant_embeddings_start_from_the_target_where_it_has_the_directions(
        vocab_size, width, projected):
    target = tiny_target("llama", vocab_size=vocab_size)  # hidden size 32
    model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab_size, hidden_size=width,
                                         intermediate_size=8, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    before = model.get_input_embeddings().weight.clone()
    assistant_module.init_embeddings_from_target(model, target)
    assert (not torch.equal(before, model.get_input_embeddings().weight)) == projected
