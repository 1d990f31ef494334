"""Profiling a tiny target and a small space end to end: complete tables, resume, validation."""

import pytest
from latency_fixtures import SHAPES, fast_settings, small_space

from hardware_profiles import benches as benches_module
from hardware_profiles import profiler as profiler_module
from hardware_profiles.parts import WARM_PARTS, required_keys
from hardware_profiles.predictor import LatencyPredictor
from hardware_profiles.profiler import image_tokens_of, profile
from hardware_profiles.table import TableError, load_table
from hardware_profiles.timing import Timing, TimingConfig
from hardware_profiles.validate import plot, validate
from search_spaces import TargetDims
from targets.tiny import tiny_inputs, tiny_target


@pytest.fixture(scope="module")
def vlm():
    return tiny_target("llava_clip")


def test_profile_times_every_part_the_space_needs(vlm, tmp_path):
    space = small_space(TargetDims.of(vlm))
    report = profile(vlm, space, SHAPES, tmp_path / "t.json", fast_settings())
    table = load_table(tmp_path / "t.json", vlm.fingerprint, report.table.device)
    keys = required_keys(space, SHAPES, table.grid, image_tokens_of(vlm))
    assert set(table.entries) == set(keys) and table.complete
    assert report.measured == len(keys) and report.skipped == 0
    # the parts the space implies: both heads, both layer kinds, the VLM's scoring prefill
    assert {"tree_overhead/vocab=0/depth=2/top_k=1/total=3",
            "tree_overhead/vocab=64/depth=3/top_k=4/total=10",
            "prefill/scores=1/ctx=40"} <= set(keys)
    assert {key.split("/")[1] for key in keys if key.startswith("layer/")} == {
        "kind=self", "kind=cross", "kind=concat"}
    # every decoding shape: the chain verified causally, the tree with its mask; plain decoding
    # T_target(1) timed as whole steps of the decoder (plain); the one-token forward is the
    # verification curve's first point
    assert {"target/tree=0/q=3/ctx=16", "target/tree=1/q=10/ctx=16", "plain/ctx=16",
            "plain/ctx=40", "step_overhead/depth=2/top_k=1/total=3/ctx=40"} <= set(keys)
    curve = table.verification_curve()
    assert sorted(curve) == [16, 40] and sorted(curve[40]) == [1, 2, 3, 4, 6, 8, 16, 32]
    assert curve[40][1] == 1.0 and all(ratio > 0 for ratio in curve[40].values())
    assert table.memory.weight_bytes > 0 and table.memory.read_gbs > 0
    assert table.device.runtime == "none"
    assert table.grid.contexts == (16, 40) and table.grid.tree_queries[-1] == 10
    assert table.grid.draft_queries == (1, 2, 3, 4)  # up to depth + 1 = 4, and top_k 4
    assert all(t.ms > 0 for t in table.entries.values())
    # the predictor covers every point of the space with this table
    predictor = LatencyPredictor(table)
    assert all(predictor.speedup(arch, shape, 2.0, 30) > 0 for arch in space for shape in SHAPES)


def test_an_interrupted_profile_resumes_and_skips_what_it_saved(vlm, tmp_path, monkeypatch):
    space = small_space(TargetDims.of(vlm))
    path = tmp_path / "t.json"
    real_time_call, calls = profiler_module.time_call, []

    def interrupted(*args, **kwargs):
        if len(calls) == 7:
            raise KeyboardInterrupt
        calls.append(1)
        return real_time_call(*args, **kwargs)

    monkeypatch.setattr(profiler_module, "time_call", interrupted)
    with pytest.raises(KeyboardInterrupt):
        profile(vlm, space, SHAPES, path, fast_settings())
    partial = load_table(path)
    assert not partial.complete and len(partial.entries) == 7
    monkeypatch.setattr(profiler_module, "time_call", real_time_call)
    report = profile(vlm, space, SHAPES, path, fast_settings())
    assert report.skipped == 7 and report.measured == len(report.table.entries) - 7
    assert load_table(path).complete
    again = profile(vlm, space, SHAPES, path, fast_settings())
    assert again.measured == 0


def test_resume_refuses_a_table_made_otherwise(vlm, tmp_path):
    space = small_space(TargetDims.of(vlm))
    path = tmp_path / "t.json"
    profile(vlm, space, SHAPES, path, fast_settings())
    with pytest.raises(TableError, match="another grid"):
        profile(vlm, space, SHAPES, path, fast_settings(contexts=(16, 32)))
    other = tiny_target("llava_clip", seed=1)
    with pytest.raises(TableError, match="not 'tiny:llava_clip'"):
        profile(other, space, SHAPES, path, fast_settings())
    fresh = profile(vlm, space, SHAPES, path, fast_settings(contexts=(16, 32)), fresh=True)
    assert fresh.skipped == 0 and fresh.table.grid.contexts == (16, 32)


def test_validation_measures_random_drafts_and_plots(vlm, tmp_path):
    space = small_space(TargetDims.of(vlm))
    profile(vlm, space, SHAPES, tmp_path / "t.json", fast_settings())
    predictor = LatencyPredictor.from_file(tmp_path / "t.json", vlm.fingerprint)
    report = validate(vlm, space, SHAPES, predictor, tiny_inputs(vlm, 6), n=3, new_tokens=3,
                      threads=1, progress=False)
    assert len(report.subnets) == 3
    for result in report.subnets:
        assert result.draft_measured_ms > 0 and result.draft_predicted_ms > 0
        assert result.step_measured_ms > 0 and result.step_tau >= 1
        assert 16 <= result.ctx <= 40
    assert report.draft.mape >= 0 and -1 <= report.step.kendall_tau <= 1
    figure = plot(report, tmp_path / "v.png", "tiny")
    assert figure.stat().st_size > 0


def test_the_drafts_parts_and_verifications_are_timed_after_a_cache_flush(vlm, tmp_path,
                                                                          monkeypatch):
    """A verification runs after the draft's tree, as do the draft's own parts (flushed); the
    target's other parts are warm. Plain decoding (PartBenches.plain_samples, whole generations)
    and the target's verifications are sampled in passes spread over the whole profile, a
    verification with 3x the samples in all: each entry is the median of every pass's samples."""
    flushes, repeats, order, verified = {}, {}, [], {}

    def record(call, timing, device, reset=None):
        flushes[len(flushes)] = timing.flush_mb
        repeats[len(repeats)] = timing.repeats
        order.append("part")
        return Timing(1.0, 0.0, 1)

    def verify(call, timing, device, reset=None):
        verified.setdefault(len(order), []).append(timing)
        return [float(len(order))] * timing.repeats  # later passes: slower

    def plain_samples(self, ctx, timing, passes):
        assert timing == settings.timing and passes == profiler_module.PLAIN_PASSES
        order.append(ctx)
        return [float(len(order)), float(len(order))]  # later passes: slower

    monkeypatch.setattr(profiler_module, "time_call", record)
    monkeypatch.setattr(profiler_module, "time_samples", verify)
    monkeypatch.setattr(profiler_module.PartBenches, "plain_samples", plain_samples)
    settings = fast_settings()
    settings.timing = TimingConfig(0, 5, flush_mb=8)
    space = small_space(TargetDims.of(vlm))
    report = profile(vlm, space, SHAPES, tmp_path / "t.json", settings)
    keys = required_keys(space, SHAPES, report.table.grid, image_tokens_of(vlm))
    passes = [i for i, item in enumerate(order) if item == 16]
    assert len(passes) == profiler_module.PLAIN_PASSES and order[passes[0] + 1] == 40
    # parts run between the passes, none before the first or after the last
    assert passes[0] == 0 and order[-1] == 40
    assert all(order[i + 2] == "part" for i in passes[:-1])
    middle = passes[len(passes) // 2]  # both contexts' median sample: the middle pass's
    assert report.table.entries["plain/ctx=16"].ms == middle + 1
    assert report.table.entries["plain/ctx=40"].ms == middle + 2
    # every verification in every pass, right after its plain steps: 3 x 5 samples in 5 passes
    targets = [key for key in keys if key.startswith("target/")]
    assert sorted(verified) == [i + 2 for i in passes]
    assert all(len(timings) == len(targets) for timings in verified.values())
    first, *later = (verified[i + 2] for i in passes)
    assert all(t.repeats == 3 and t.flush_mb == 8 for pass_ in verified.values() for t in pass_)
    assert all(t.warmup == 10 for t in first) and all(t.warmup == 2 for p in later for t in p)
    assert all(report.table.entries[key].ms == middle + 2 for key in targets)
    for index, key in enumerate(key for key in keys if key.split("/")[0] not in ("plain",
                                                                                  "target")):
        part = key.split("/")[0]
        warm = part in ("step_overhead", "prefill")
        assert (part in WARM_PARTS) == warm
        assert flushes[index] == (0 if warm else 8), key
        assert repeats[index] == 5, key


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_a_plain_step_is_timed_as_the_decoders_own_plain_generation(vlm, monkeypatch, clock):
    """T_target(1) samples are whole plain steps of SpeculativeDecoder(target, None) (prefill
    excluded: by the decoder's stopwatch, or on CPU time by a one-token generation's), around
    the asked context, after one untimed warm-up generation."""
    calls = []
    real_generate = benches_module.SpeculativeDecoder.generate

    def generate(self, *args, **kwargs):
        assert self.draft is None
        out = real_generate(self, *args, **kwargs)
        calls.append((out.stats.prompt_tokens, kwargs["max_new_tokens"], out.stats.new_tokens))
        return out

    monkeypatch.setattr(benches_module.SpeculativeDecoder, "generate", generate)
    timing = TimingConfig(warmup=1, repeats=9, budget_s=60, clock=clock)
    samples = benches_module.PartBenches(vlm, 0).plain_samples(40, timing, passes=3)
    assert len(samples) == 3
    if clock == "wall":  # exact: CPU-time samples subtract two prefills and can come out < 0
        assert all(ms > 0 for ms in samples)
    # 1 warm-up + 3 timed 16-token generations, no EOS; on CPU time each after a one-token one
    tokens = benches_module.PLAIN_TOKENS
    one = [(40 - tokens // 2, tokens, tokens)]
    assert calls == (one if clock == "wall" else [(40 - tokens // 2, 1, 1), *one]) * 4
