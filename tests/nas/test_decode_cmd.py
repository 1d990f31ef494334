"""`draftnas decode`: a draft checkpoint (or none) on a local tiny LLaVA, text or JSON, bad input.

Two ways in: `nas.cli.run_command` (compose conf/decode.yaml, run, write result.json), where
errors arrive as exceptions, and the real entry point `nas.cli.main`, where they become exit
status 2 and one line on stderr.
"""

import json
from pathlib import Path

import pytest
from hostile_files import decompression_bomb
from PIL import Image
from tiny_llava_dir import save_tiny_llava

from nas.cli import main, run_command
from nas.run_context import RunContext
from specdec import DraftConfig, DraftError, DraftModel
from targets import load_target
from targets.tiny import tiny_target


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory) -> Path:
    return save_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("image") / "red.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(path)
    return path


def saved_draft(llava_dir: Path, directory: Path, **choices) -> Path:
    target = load_target(str(llava_dir))
    return DraftModel.random(DraftConfig.for_target(target, **choices), target).save_pretrained(
        directory)


@pytest.fixture(scope="module")
def add_draft(llava_dir, tmp_path_factory) -> Path:
    return saved_draft(llava_dir, tmp_path_factory.mktemp("draft") / "add", interaction="add")


@pytest.fixture(scope="module")
def cross_draft(llava_dir, tmp_path_factory) -> Path:
    """Cross-attention keeping half the image positions: decoding scores the image tokens."""
    return saved_draft(llava_dir, tmp_path_factory.mktemp("draft") / "cross",
                       interaction="cross_attention", vision_keep_ratio=0.5)


# -- in process: run_command -----------------------------------------------------------------------
def run_decode(capsys, tmp_path: Path, *overrides: str) -> tuple[dict, str]:
    assert run_command("decode", [f"run_dir={tmp_path}", *overrides], wants_help=False,
                       ctx=RunContext.from_environment()) == 0
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1] == str(tmp_path / "result.json")
    return json.loads((tmp_path / "result.json").read_text())["result"], out


def test_a_draft_decodes_what_the_plain_target_decodes(capsys, tmp_path, llava_dir, image,
                                                       cross_draft):
    common = [f"target={llava_dir}", f"image={image}", "prompt='what colour is it'",
              "max_new_tokens=8"]
    vanilla, _ = run_decode(capsys, tmp_path / "vanilla", *common, "draft=none")
    drafted, out = run_decode(capsys, tmp_path / "tree", *common, f"draft={cross_draft}",
                              "mode=tree", "depth=3", "top_k=2", "total_tokens=6")
    assert drafted["token_ids"] == vanilla["token_ids"] and len(vanilla["token_ids"]) >= 1
    assert vanilla["stats"]["tau"] in (None, 1.0)
    assert "tau (tokens per target forward, bonus token included)" in out
    as_json, out = run_decode(capsys, tmp_path / "json", *common, f"draft={cross_draft}",
                              "mode=chain", "k=2", "format=json")
    assert json.loads(out.splitlines()[0])["token_ids"] == vanilla["token_ids"]
    assert as_json["token_ids"] == vanilla["token_ids"]


def test_adaptive_false_drafts_every_step(capsys, tmp_path, llava_dir, image, cross_draft):
    """A random draft rarely matches, so adaptive decoding would pause it; adaptive=false must
    reach the decoder and draft at every step."""
    result, _ = run_decode(capsys, tmp_path, f"target={llava_dir}", f"image={image}",
                             "prompt='what colour is it'", "max_new_tokens=12",
                             f"draft={cross_draft}", "mode=chain", "k=2", "adaptive=false")
    stats = result["stats"]
    assert stats["steps"] >= 2 and stats["drafted_steps"] == stats["steps"]


def test_a_draft_for_another_target_is_one_line_draft_error(tmp_path, cross_draft):
    other = save_tiny_llava(tmp_path / "other-llava", seed=5)
    with pytest.raises(DraftError, match="fingerprint") as error:
        run_command("decode", [f"run_dir={tmp_path / 'run'}", f"target={other}",
                               f"draft={cross_draft}", "prompt=what"], wants_help=False,
                    ctx=RunContext.from_environment())
    assert "\n" not in str(error.value)


def test_total_tokens_below_depth_is_one_line_draft_error(tmp_path, llava_dir):
    with pytest.raises(DraftError, match="total_tokens") as error:
        run_command("decode", [f"run_dir={tmp_path}", f"target={llava_dir}", "prompt=what",
                               "depth=6", "total_tokens=4"], wants_help=False,
                    ctx=RunContext.from_environment())
    assert "\n" not in str(error.value)


# -- the real entry point: main(), exit codes, stdout and stderr ----------------------------------
def main_decode(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["decode", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_format_prints_tokens_and_stats_then_the_result_path(capsys, tmp_path, llava_dir,
                                                                    image, add_draft):
    run_dir = tmp_path / "run"
    code, out, err = main_decode(capsys, f"target={llava_dir}", f"draft={add_draft}",
                                 f"image={image}", "prompt='what shape is it'", "format=json",
                                 "max_new_tokens=5", "depth=3", "top_k=2", "total_tokens=6",
                                 f"run_dir={run_dir}")
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
    ("image too large to decode", ["image", "huge.png", "too large"]),
    ("no prompt", ["prompt"]),
    ("temperature nan", ["temperature", "nan", "finite"]),
    ("temperature inf", ["temperature", "inf", "finite"]),
])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, llava_dir, image, add_draft, case,
                                         words):
    argv = {"draft": f"draft={add_draft}", "image": f"image={image}", "prompt": "prompt=what"}
    if case == "truncated checkpoint":
        argv["draft"] = f"draft={corrupt(add_draft, tmp_path)}"
    elif case == "draft for another target":
        argv["draft"] = f"draft={foreign(tmp_path)}"
    elif case == "missing image":
        argv["image"] = f"image={tmp_path / 'missing.png'}"
    elif case == "image too large to decode":
        argv["image"] = f"image={decompression_bomb(tmp_path / 'huge.png')}"
    elif case == "no prompt":
        del argv["prompt"]
    extra = {"total_tokens below depth": ["depth=6", "total_tokens=4"],
             "temperature nan": ["temperature=nan"],
             "temperature inf": ["temperature=inf"]}.get(case, [])
    code, _, err = main_decode(capsys, f"target={llava_dir}", *argv.values(), *extra,
                               f"run_dir={tmp_path / 'run'}")
    assert code == 2 and err.count("\n") == 1 and err.startswith("draftnas decode: error: ")
    for word in words:
        assert word in err, err
