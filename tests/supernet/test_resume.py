"""A run killed with SIGKILL and resumed ends with the same weights as a run never interrupted."""

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
from shapes_runs import train_command, train_env, write_small_space

from targets.embedded.shapes import ensure_built

STEPS = 12
OVERRIDES = (f"train.steps={STEPS}", "train.checkpoint_every=1", "train.batch_size=2")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    ensure_built(home, budget="test")
    return home


def final_weights(run_dir: Path) -> dict:
    return load_file(run_dir / "supernet" / "supernet.safetensors")


def latest_step(run_dir: Path) -> int:
    pointer = run_dir / "checkpoints" / "latest"
    return int(pointer.read_text().strip().removeprefix("step-")) if pointer.is_file() else 0


def test_sigkill_then_resume_gives_the_weights_of_an_uninterrupted_run(home, tmp_path):
    space = write_small_space(tmp_path)
    env = train_env(home)
    straight = tmp_path / "straight"
    subprocess.run(train_command(straight, space, *OVERRIDES), env=env, check=True,
                   capture_output=True, timeout=300)

    killed = tmp_path / "killed"
    process = subprocess.Popen(train_command(killed, space, *OVERRIDES), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while latest_step(killed) < STEPS // 2 and process.poll() is None:
        assert time.monotonic() < deadline, "the run never reached half way"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "supernet").exists()
    stopped_at = latest_step(killed)
    assert stopped_at < STEPS

    subprocess.run(train_command(killed, space, *OVERRIDES, "resume=true"), env=env, check=True,
                   capture_output=True, timeout=300)
    result = json.loads((killed / "result.json").read_text())["result"]
    assert result["resumed_from_step"] == stopped_at and result["steps"] == STEPS
    expected, got = final_weights(straight), final_weights(killed)
    assert expected.keys() == got.keys()
    for name in expected:
        assert (expected[name] == got[name]).all(), name
    rows = (killed / "metrics.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in rows] == list(range(1, STEPS + 1))
