"""`draftnas decode`: a draft checkpoint (or none) on a local target, text or JSON, bad input.

Run through `nas.cli.run_command` (compose conf/decode.yaml, run, write result.json), so errors
arrive as exceptions; exit codes through `main()` are tested in tests/nas/test_decode_cmd.py.
"""

import json
from pathlib import Path

import pytest
from PIL import Image
from tiny_llava_dir import save_tiny_llava

from nas.cli import run_command
from specdec import DraftConfig, DraftError, DraftModel
from targets import load_target


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory) -> Path:
    return save_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def image_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("image") / "red.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(path)
    return path


@pytest.fixture(scope="module")
def draft_dir(llava_dir, tmp_path_factory) -> Path:
    target = load_target(str(llava_dir))
    cfg = DraftConfig.for_target(target, interaction="cross_attention", vision_keep_ratio=0.5)
    return DraftModel.random(cfg, target).save_pretrained(tmp_path_factory.mktemp("draft"))


def decode(capsys, tmp_path: Path, *overrides: str) -> tuple[dict, str]:
    assert run_command("decode", [f"run_dir={tmp_path}", *overrides], wants_help=False) == 0
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1] == str(tmp_path / "result.json")
    return json.loads((tmp_path / "result.json").read_text())["result"], out


def test_a_draft_decodes_what_the_plain_target_decodes(capsys, tmp_path, llava_dir, image_file,
                                                       draft_dir):
    common = [f"target={llava_dir}", f"image={image_file}", "prompt='what colour is it'",
              "max_new_tokens=8"]
    vanilla, _ = decode(capsys, tmp_path / "vanilla", *common, "draft=none")
    drafted, out = decode(capsys, tmp_path / "tree", *common, f"draft={draft_dir}", "mode=tree",
                          "depth=3", "top_k=2", "total_tokens=6")
    assert drafted["token_ids"] == vanilla["token_ids"] and len(vanilla["token_ids"]) >= 1
    assert vanilla["stats"]["tau"] in (None, 1.0)
    assert "tau (tokens per target forward, bonus token included)" in out
    as_json, out = decode(capsys, tmp_path / "json", *common, f"draft={draft_dir}",
                          "mode=chain", "k=2", "format=json")
    assert json.loads(out.splitlines()[0])["token_ids"] == vanilla["token_ids"]
    assert as_json["token_ids"] == vanilla["token_ids"]


def test_a_draft_for_another_target_is_one_line_draft_error(tmp_path, llava_dir, draft_dir):
    other = save_tiny_llava(tmp_path / "other-llava", seed=5)
    with pytest.raises(DraftError, match="fingerprint") as error:
        run_command("decode", [f"run_dir={tmp_path / 'run'}", f"target={other}",
                               f"draft={draft_dir}", "prompt=what"], wants_help=False)
    assert "\n" not in str(error.value)


def test_total_tokens_below_depth_is_one_line_draft_error(tmp_path, llava_dir):
    with pytest.raises(DraftError, match="total_tokens") as error:
        run_command("decode", [f"run_dir={tmp_path}", f"target={llava_dir}", "prompt=what",
                               "depth=6", "total_tokens=4"], wants_help=False)
    assert "\n" not in str(error.value)
