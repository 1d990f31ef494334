"""A draft's recommended decoding shape: stored in its config, used by decode and bench unless the
command line gives shape keys; drafts without one (older checkpoints) get the defaults."""

import json
from pathlib import Path

import pytest

from nas.cli import main
from specdec import DecodeShape, DraftConfig, DraftError, DraftModel
from specdec.bench.methods import draft_method
from specdec.recommended import ShapeKeys, shaped_config
from targets import load_target

CHAIN2 = {"mode": "chain", "k": 2}
TREE = {"mode": "tree", "depth": 3, "top_k": 2, "total_tokens": 6}


@pytest.fixture(scope="module")
def chain_draft(llava_dir, tmp_path_factory) -> Path:
    target = load_target(str(llava_dir))
    draft = DraftModel.random(DraftConfig.for_target(target, decode=DecodeShape.chain(2)),
                              target)
    return draft.save_pretrained(tmp_path_factory.mktemp("draft") / "chain")


def config_with(decode) -> DraftConfig:
    data = json.loads(json.dumps(DraftConfig(
        "concat", [2], 1, 2, 16, 32, 64, 1.0, None, 32, 128, 2, "f" * 64).to_dict()))
    return DraftConfig.from_dict({**data, "decode": decode})


@pytest.mark.parametrize(("recommended", "given", "label", "source"), [
    (CHAIN2, {}, "chain 2", "recommended"),
    (TREE, {"top_k": 3}, "tree 3/3/6", "recommended + command line"),
    (CHAIN2, {"mode": "tree"}, "tree 6/4/32", "command line"),  # another mode: defaults under it
    (CHAIN2, {"k": 5}, "chain 5", "recommended + command line"),
    (None, {}, "tree 6/4/32", "default"),
    (None, {"mode": "chain", "k": 3}, "chain 3", "command line"),
])
def test_shape_is_the_recommended_one_with_the_given_keys_on_top(recommended, given, label,
                                                                 source):
    config, where = shaped_config(config_with(recommended).decode, ShapeKeys(**given),
                                  adaptive=False)
    assert (config.shape.label, where) == (label, source)
    assert config.adaptive is False


def test_config_json_keeps_the_shape_and_older_drafts_load_without_one():
    assert config_with(TREE).decode == DecodeShape(3, 2, 6)
    assert config_with(TREE).to_dict()["decode"] == TREE  # config.json's form
    data = config_with(None).to_dict()
    del data["decode"]  # a checkpoint written before shapes were searched
    assert DraftConfig.from_dict(data).decode is None
    with pytest.raises(DraftError, match="field 'decode'"):
        config_with({"mode": "tree", "depth": 6, "top_k": 4, "total_tokens": 6})


def test_decode_uses_the_drafts_shape_unless_told(capsys, tmp_path, llava_dir, chain_draft):
    common = ["decode", f"target={llava_dir}", f"draft={chain_draft}", "prompt=hi",
              "max_new_tokens=4", "format=json"]
    assert main([*common, f"run_dir={tmp_path / 'a'}"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    assert result["decode"] == {"shape": "chain 2", "source": "recommended"}
    assert len(result["stats"]["acceptance_by_depth"]) <= 2
    assert main([*common, "mode=tree", "depth=3", "top_k=2", "total_tokens=6",
                 f"run_dir={tmp_path / 'b'}"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    assert result["decode"] == {"shape": "tree 3/2/6", "source": "command line"}


def test_bench_rows_name_each_drafts_shape(llava_dir, chain_draft):
    target = load_target(str(llava_dir))
    method = draft_method(target, chain_draft, ShapeKeys(), adaptive=False)
    assert method.decoder.config.shape == DecodeShape(2, 1, 3)
    assert "(chain 2, recommended, every step)" in method.name
    assert "[image placeholders]" in method.name  # what the draft reads at image positions
    method = draft_method(target, chain_draft, ShapeKeys(k=3), adaptive=True)
    assert "(chain 3, recommended + command line)" in method.name
    method = draft_method(target, chain_draft, ShapeKeys(), adaptive=True, stop_below=0.2)
    assert method.decoder.config.stop_below == 0.2
    assert "(chain 2 stopping below 0.2, recommended)" in method.name
