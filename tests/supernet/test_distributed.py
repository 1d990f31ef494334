"""torchrun with 2 gloo processes trains like one process with the whole (doubled) batch."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from shapes_runs import train_command, train_env, write_small_space

from targets.embedded.shapes import ensure_built

OVERRIDES = ("train.steps=3", "train.batch_size=4", "train.checkpoint_every=3")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    ensure_built(home, budget="test")
    return home


def test_two_gloo_processes_match_one_process_with_the_doubled_batch(home, tmp_path):
    space = write_small_space(tmp_path)
    env = train_env(home)
    single = tmp_path / "single"
    subprocess.run(train_command(single, space, *OVERRIDES), env=env, check=True,
                   capture_output=True, timeout=300)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    pair = tmp_path / "pair"
    command = train_command(pair, space, *OVERRIDES)
    launched = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m",
                               *command[2:]], check=False, env=env, capture_output=True,
                              text=True,
                              timeout=300)
    assert launched.returncode == 0, launched.stderr[-2000:]
    result = json.loads((pair / "result.json").read_text())["result"]
    assert result["processes"] == 2
    one, two = load_file(single / "supernet" / "supernet.safetensors"), \
        load_file(pair / "supernet" / "supernet.safetensors")
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=0, atol=2e-5, msg=name)
