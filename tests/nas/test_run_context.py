"""The run context: target specs as results record them, one load per target key, and a copy for
another process that carries the home, tables and build but no loaded target."""

import pickle
from pathlib import Path

import pytest

from hardware_profiles.table_store import TableStore
from nas import run_context
from nas.run_context import RunContext, ServeConfig, TargetConfig, runtime_of
from nas.user_errors import UserError
from targets import TargetError
from targets.tiny import tiny_target


def context(tmp_path: Path, shapes_build: str | None = None) -> RunContext:
    return RunContext(tmp_path / "home", TableStore(tmp_path / "tables"), shapes_build)


@pytest.mark.parametrize("spec, build, environment, expected", [
    ("shapes", None, None, "shapes:full"),  # the real recipe when nothing names one
    ("shapes", "smoke", None, "shapes:smoke"),  # the caller's default (the pipeline's budget)
    ("shapes", "smoke", "test", "shapes:test"),  # $DRAFTNAS_SHAPES_BUDGET wins over it
    ("shapes:full", "smoke", "test", "shapes:full"),  # a build the spec names wins over both
    ("smollm2", "smoke", "test", "smollm2"),  # one build only
    ("org/hub-model", None, None, "org/hub-model"),
])
def test_spec_names_the_build_of_an_embedded_target(tmp_path, spec, build, environment,
                                                    expected):
    assert context(tmp_path, environment).spec(spec, build) == expected


def test_a_local_directory_becomes_absolute_and_an_embedded_name_stays_a_name(tmp_path,
                                                                              monkeypatch):
    """Ray Tune runs each trial in its own directory: a relative target path must not reach
    it; a directory that happens to be called like an embedded target is not that target."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shapes").mkdir()
    (tmp_path / "my-vlm").mkdir()
    ctx = context(tmp_path, "test")
    assert ctx.spec("my-vlm") == str(tmp_path / "my-vlm")
    assert ctx.spec("shapes") == "shapes:test"


def test_a_target_loads_once_per_spec_device_and_dtype(tmp_path, monkeypatch):
    directory = tmp_path / "tiny"
    tiny_target("llama").model.save_pretrained(directory)
    loads = []

    def counting(spec, **kwargs):
        loads.append((spec, kwargs["dtype"]))
        return f"target {len(loads)}"

    monkeypatch.setattr(run_context, "load_target", counting)
    ctx = context(tmp_path)
    fp32 = TargetConfig(target=str(directory), device="cpu", dtype="float32")
    first = ctx.target(fp32)
    monkeypatch.chdir(tmp_path)  # the same directory named relatively is the same target
    assert ctx.target(TargetConfig(target="tiny", device="cpu", dtype="float32")) is first
    assert ctx.target(TargetConfig(target="tiny", device="cpu", dtype="bfloat16")) != first
    assert [spec for spec, _ in loads] == [str(directory)] * 2
    served = ServeConfig(target="tiny", device="cpu", dtype="float32", quantize="auto")
    assert ctx.target(served) != first  # another runtime: another load
    assert ctx.target(ServeConfig(**{**vars(served), "quantize": "fp16"})) is ctx.target(served)
    assert len(loads) == 3


@pytest.mark.parametrize("device, dtype, quantize, runtime", [
    ("cpu", "float32", "auto", "fp16"),  # what measured fastest on a CPU
    ("cpu", "bfloat16", "auto", "none"),
    ("cuda", "bfloat16", "auto", "none"),
    ("cpu", "float32", "none", "none"),
])
def test_auto_runtime_is_fp16_on_a_cpu_in_float32_only(device, dtype, quantize, runtime):
    cfg = ServeConfig(target="t", device=device, dtype=dtype, quantize=quantize)
    assert runtime_of(cfg) == runtime
    assert runtime_of(TargetConfig(target="t", device=device, dtype=dtype)) == "none"  # training


def test_a_copy_for_another_process_carries_no_loaded_target(tmp_path):
    ctx = context(tmp_path, "smoke")
    ctx.loaded[run_context.TargetKey("shapes:smoke", "cpu", "float32", "none")] = object()
    copy = pickle.loads(pickle.dumps(ctx))
    assert copy == ctx and copy.loaded == {} and len(ctx.loaded) == 1
    assert (copy.home, copy.tables, copy.shapes_build) == (ctx.home, ctx.tables, "smoke")


@pytest.mark.parametrize("keys, word", [({"dtype": "float8"}, "dtype"),
                                        ({"device": "gpu"}, "device"),
                                        ({"quantize": "int8"}, "quantize: unknown 'int8'"),
                                        ({"quantize": "fp16", "dtype": "bfloat16"},
                                         "quantize=fp16 is a CPU runtime")])
def test_bad_device_or_dtype_is_a_user_error_before_loading(tmp_path, keys, word):
    cfg = ServeConfig(**{"target": "shapes", "device": "cpu", "dtype": "float32",
                         "quantize": "auto", **keys})
    with pytest.raises((UserError, TargetError), match=word):  # both exit 2 with their line
        context(tmp_path).target(cfg)


def test_a_searchs_evaluator_spec_reaches_ray_workers_equal_and_without_targets(tmp_path):
    """A Ray worker rebuilds its evaluator once and reuses it while the spec it gets equals the
    one it built from: a pickled spec must compare equal, and carry no loaded target."""
    from nas.commands.search import EvaluatorSpec
    from nas.objectives import ObjectiveConfig
    from userdata import DataConfig

    ctx = context(tmp_path, "smoke")
    ctx.loaded[run_context.TargetKey("shapes:smoke", "cpu", "float32", "none")] = object()
    spec = EvaluatorSpec(ctx=ctx, target=TargetConfig(target="shapes:smoke", device="cpu",
                                                      dtype="float32"),
                         supernet=tmp_path / "supernet", table=tmp_path / "t.json",
                         search_space=None, validation_prompts=2, max_new_tokens=8, threads=1,
                         objective=ObjectiveConfig(), data=DataConfig())
    copy = pickle.loads(pickle.dumps(spec))
    assert copy == spec and copy.ctx.loaded == {} and copy.ctx.shapes_build == "smoke"
