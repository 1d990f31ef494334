"""The command line: dispatch, configs, run directories, result.json, one-line errors."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from hostile_files import decompression_bomb, read_only_directory
from omegaconf import OmegaConf
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import CLIPImageProcessorPil, LlavaProcessor, PreTrainedTokenizerFast

from nas.cli import main
from nas.commands import COMMANDS, command_module, compose_config
from nas.run_dir import create_run_dir
from targets import load_target
from targets.tiny import tiny_target

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("draftnas target: error: ")
    for word in words:
        assert word in err


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny random Llama saved like any local model directory (no tokenizer)."""
    directory = tmp_path_factory.mktemp("tiny-llama")
    tiny_target("llama").model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_llava_dir(tmp_path_factory) -> Path:
    """A tiny random LLaVA with a real (word-level, offline) processor and chat template."""
    image_token, words = "<image>", ["user", "assistant", ":", "what", "colour", "is", "it"]
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, image_token: 127}
    vocab |= {word: 4 + index for index, word in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    template = (
        "{% for m in messages %}{{ m['role'] }} : {% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}"
        "{% endfor %}{% if add_generation_prompt %}assistant : {% endif %}"
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", extra_special_tokens={"image_token": image_token},
        chat_template=template,
    )
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 16},
                                              crop_size={"height": 16, "width": 16}),
        tokenizer=tokenizer, patch_size=4, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, image_token=image_token, chat_template=template,
    )
    directory = tmp_path_factory.mktemp("tiny-llava")
    tiny_target("llava_clip", vocab_size=128).model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_listed_command_composes_its_real_config(command):
    cfg = compose_config(command, [])
    schema = {field.name for field in fields(command_module(command).Config)}
    assert set(cfg.keys()) == schema
    assert OmegaConf.missing_keys(cfg) == set()


def test_help_lists_exactly_the_commands_whose_module_exists(capsys):
    code, out, _ = run_cli(capsys, "--help")
    command_lines = out.split("commands:\n")[1].split("\n\n")[0].splitlines()
    listed = {line.split()[0] for line in command_lines}
    contract = ("target", "train", "profile", "search", "export", "decode", "bench", "pipeline")
    existing = {name for name in contract if importlib.util.find_spec(f"nas.commands.{name}")}
    assert code == 0 and "target" in listed
    assert listed == existing  # a command not written yet is not offered


def test_command_help_prints_the_config(capsys):
    code, out, _ = run_cli(capsys, "target", "--help", "max_new_tokens=7")
    assert code == 0 and "max_new_tokens: 7" in out and "usage: draftnas target" in out


@pytest.mark.parametrize("argv", [["nonsense"], []])
def test_unknown_or_missing_command_exits_2_with_the_list(capsys, argv):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.startswith("draftnas: error: ") and "commands: target" in err


@pytest.mark.parametrize("override, words", [
    ("target=[1", ["target=[1"]),
    ("colour=red", ["colour"]),
    ("max_new_tokens=lots", ["max_new_tokens", "lots"]),
    ("noequals", ["noequals"]),
])
def test_malformed_overrides_exit_2_with_one_line(capsys, tmp_path, monkeypatch, override, words):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "target", override)
    assert_one_line_error(code, err, *words)
    assert not (tmp_path / "runs").exists()


def test_unknown_spec_exits_2_and_leaves_no_run_dir(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "target", f"target={tmp_path / 'no-such-model'}")
    assert_one_line_error(code, err, "no-such-model")
    assert list((tmp_path / "runs" / "target").iterdir()) == []


def test_directory_without_config_exits_2(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(capsys, "target", f"target={empty}", f"run_dir={tmp_path / 'run'}")
    assert_one_line_error(code, err, str(empty))


@pytest.mark.parametrize("content", [None, b"not an image at all"])
def test_missing_or_unreadable_image_exits_2(capsys, tmp_path, tiny_dir, content):
    image = tmp_path / "photo.png"
    if content is not None:
        image.write_bytes(content)
    code, _, err = run_cli(capsys, "target", f"target={tiny_dir}", f"image={image}", "prompt=hi",
                           f"run_dir={tmp_path / 'run'}")
    assert_one_line_error(code, err, "image", str(image))


def test_local_directory_target_prints_facts_and_result_path_last(capsys, tmp_path, monkeypatch,
                                                                   tiny_dir):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "target", f"name={tiny_dir}")
    assert code == 0, err
    result_path = Path(out.splitlines()[-1])
    assert result_path.name == "result.json"
    assert result_path.parent.parent == Path("runs") / "target"
    saved = json.loads(result_path.read_text())
    assert saved["command"] == "target"
    assert saved["config"]["name"] == str(tiny_dir)
    assert saved["config"]["run_dir"] == str(result_path.parent)
    facts = saved["result"]
    assert facts["num_layers"] == 2 and facts["hidden_size"] == 32 and facts["vocab_size"] == 128
    assert not facts["is_vlm"]
    for key in ("family", "fingerprint", "path", "num_layers"):
        assert str(facts[key]) in out


def test_image_and_prompt_on_a_vlm_generate_what_transformers_generates(capsys, tmp_path,
                                                                         tiny_llava_dir):
    image = tmp_path / "red.png"
    Image.new("RGB", (20, 24), "red").save(image)
    code, out, err = run_cli(capsys, "target", f"target={tiny_llava_dir}", f"image={image}",
                             "prompt=what colour is it", "max_new_tokens=5",
                             f"run_dir={tmp_path / 'run'}")
    assert code == 0, err
    result = json.loads((tmp_path / "run" / "result.json").read_text())["result"]
    assert result["is_vlm"] and result["family"] == "llava"
    assert f"output: {result['text']}" in out
    target = load_target(tiny_llava_dir)
    prepared = target.prepare(prompt="what colour is it", images=[Image.open(image)])
    ids = prepared.input_ids
    expected = target.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                     max_new_tokens=5, **prepared.model_kwargs)
    assert result["token_ids"] == expected[0, ids.shape[1]:].tolist()


def test_two_runs_in_the_same_second_get_two_directories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = create_run_dir("target", None), create_run_dir("target", None)
    assert first != second and first.is_dir() and second.is_dir()


@pytest.fixture(scope="module")
def smollm2():
    return load_target("smollm2")


def test_prompt_generates_what_transformers_generates(capsys, tmp_path, smollm2):
    run_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, "target", "target=smollm2", "prompt=Name a colour.",
                             "max_new_tokens=6", f"run_dir={run_dir}")
    assert code == 0, err
    result = json.loads((run_dir / "result.json").read_text())["result"]
    ids = smollm2.prepare(prompt="Name a colour.").input_ids
    expected = smollm2.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=6)[0, ids.shape[1]:].tolist()
    assert result["token_ids"] == expected
    assert result["text"] in out and result["prompt_tokens"] == ids.shape[1]


def test_prompt_longer_than_the_context_exits_2(capsys, tmp_path, smollm2):
    code, _, err = run_cli(capsys, "target", "target=smollm2", "prompt=hello",
                           f"max_new_tokens={smollm2.max_positions}", f"run_dir={tmp_path}")
    assert_one_line_error(code, err, "max_new_tokens", str(smollm2.max_positions))


def test_image_for_a_text_only_target_exits_2(capsys, tmp_path, smollm2):
    image = tmp_path / "red.png"
    Image.new("RGB", (8, 8), "red").save(image)
    code, _, err = run_cli(capsys, "target", "target=smollm2", "prompt=What colour?",
                           f"image={image}", f"run_dir={tmp_path / 'run'}")
    assert_one_line_error(code, err, "image", "text-only")


def test_console_script_in_a_subprocess(tmp_path, tiny_dir):
    draftnas = Path(sys.executable).with_name("draftnas")
    done = subprocess.run([str(draftnas), "target", f"target={tiny_dir}", f"run_dir={tmp_path}"],
                          check=False, capture_output=True, text=True, timeout=300,
                          env=os.environ | {"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str(tmp_path / "result.json")
    assert (tmp_path / "result.json").is_file()


def test_a_bad_space_file_is_said_once(capsys, tmp_path):
    """The space loader quotes its cause's message (a SpaceError `from` a SpaceError): the one
    line must not fold that cause in a second time."""
    space = tmp_path / "bad.yaml"
    space.write_text("name: bad\ndimensions:\n  num_layers: []\n")
    code, _, err = run_cli(capsys, "train", f"search_space={space}", f"run_dir={tmp_path / 'run'}")
    assert code == 2 and err.count("\n") == 1, err
    assert str(space) in err and err.count("needs a non-empty list of choices") == 1, err


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_safetensors_weights_exit_2_naming_the_file(capsys, tmp_path, tiny_dir, damage):
    directory = tmp_path / "damaged"
    shutil.copytree(tiny_dir, directory)
    weights = directory / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a tensor file")
    code, _, err = run_cli(capsys, "target", f"target={directory}", f"run_dir={tmp_path / 'run'}")
    assert_one_line_error(code, err, str(weights), "safetensors", "fetch the model's weights")


@pytest.mark.parametrize("where", ["a file", "below a file", "read-only"])
def test_a_run_dir_that_cannot_be_written_is_refused_before_the_work(capsys, tmp_path, tiny_dir,
                                                                     monkeypatch, where):
    # Refused before the target loads: no load may start.
    monkeypatch.setattr(command_module("target"), "run",
                        lambda *args: pytest.fail("the command ran"))
    (tmp_path / "file").write_text("")
    run_dir = {"a file": tmp_path / "file", "below a file": tmp_path / "file" / "run",
               "read-only": tmp_path / "locked"}[where]
    with read_only_directory(tmp_path / "locked"):
        code, _, err = run_cli(capsys, "target", f"target={tiny_dir}", f"run_dir={run_dir}")
    assert_one_line_error(code, err, "run_dir", str(run_dir), "give a directory you can write")


def test_a_decompression_bomb_image_exits_2(capsys, tmp_path, tiny_llava_dir):
    bomb = decompression_bomb(tmp_path / "huge.png")
    code, _, err = run_cli(capsys, "target", f"target={tiny_llava_dir}", f"image={bomb}",
                           "prompt=what colour is it", f"run_dir={tmp_path / 'run'}")
    assert_one_line_error(code, err, "image", str(bomb), "too large", "resize")
