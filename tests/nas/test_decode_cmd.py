"""`draftnas decode` through the real entry point: exit codes, stdout, one-line errors."""

import json
from pathlib import Path

import pytest
from PIL import Image
from tiny_llava_dir import save_tiny_llava

from nas.cli import main
from specdec import DraftConfig, DraftModel
from targets import load_target
from targets.tiny import tiny_target


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory) -> Path:
    return save_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("image") / "blue.png"
    Image.new("RGB", (20, 20), (20, 40, 220)).save(path)
    return path


@pytest.fixture(scope="module")
def draft_dir(llava_dir, tmp_path_factory) -> Path:
    target = load_target(str(llava_dir))
    draft = DraftModel.random(DraftConfig.for_target(target, interaction="add"), target)
    return draft.save_pretrained(tmp_path_factory.mktemp("draft") / "add")


def decode(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["decode", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_format_prints_tokens_and_stats_then_the_result_path(capsys, tmp_path, llava_dir,
                                                                    image, draft_dir):
    run_dir = tmp_path / "run"
    code, out, err = decode(capsys, f"target={llava_dir}", f"draft={draft_dir}", f"image={image}",
                            "prompt='what shape is it'", "format=json", "max_new_tokens=5",
                            "depth=3", "top_k=2", "total_tokens=6", f"run_dir={run_dir}")
    assert code == 0, err
    lines = out.splitlines()
    printed = json.loads(lines[0])
    assert lines[-1] == str(run_dir / "result.json")
    assert 1 <= len(printed["token_ids"]) <= 5
    assert printed["stats"]["new_tokens"] == len(printed["token_ids"])
    assert {"tau", "acceptance_by_depth", "time_draft", "time_target"} <= set(printed["stats"])
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["command"] == "decode" and saved["result"]["token_ids"] == printed["token_ids"]


def corrupt(draft_dir: Path, tmp_path: Path) -> Path:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((draft_dir / "config.json").read_bytes())
    weights = (draft_dir / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    return broken


def foreign(tmp_path: Path) -> Path:
    other = tiny_target("llava_clip", seed=9)
    return DraftModel.random(DraftConfig.for_target(other), other).save_pretrained(tmp_path / "f")


@pytest.mark.parametrize("case, words", [
    ("truncated checkpoint", ["model.safetensors", "truncated"]),
    ("draft for another target", ["fingerprint"]),
    ("total_tokens below depth", ["total_tokens"]),
    ("missing image", ["image", "missing.png"]),
    ("no prompt", ["prompt"]),
])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, llava_dir, image, draft_dir, case,
                                         words):
    argv = {"draft": f"draft={draft_dir}", "image": f"image={image}", "prompt": "prompt=what"}
    if case == "truncated checkpoint":
        argv["draft"] = f"draft={corrupt(draft_dir, tmp_path)}"
    elif case == "draft for another target":
        argv["draft"] = f"draft={foreign(tmp_path)}"
    elif case == "missing image":
        argv["image"] = f"image={tmp_path / 'missing.png'}"
    elif case == "no prompt":
        del argv["prompt"]
    extra = ["depth=6", "total_tokens=4"] if case == "total_tokens below depth" else []
    code, _, err = decode(capsys, f"target={llava_dir}", *argv.values(), *extra,
                          f"run_dir={tmp_path / 'run'}")
    assert code == 2 and err.count("\n") == 1 and err.startswith("draftnas decode: error: ")
    for word in words:
        assert word in err, err
