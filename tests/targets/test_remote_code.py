"""No code from a model directory ever runs: not on a "y" typed at transformers' prompt, not in any
`from_pretrained` call of the project."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Our own checkpoint class: it reads safetensors and JSON, never code.
OWN_LOADERS = ("DraftModel.from_pretrained(",)


def hostile_directory(directory: Path, marker: Path) -> Path:
    """A model directory whose config names its own code (`auto_map`); importing that code writes
    `marker`."""
    directory.mkdir()
    (directory / "config.json").write_text(
        '{"model_type": "hostile_vlm", "auto_map": {"AutoConfig": "configuration_hostile.Config",'
        ' "AutoModelForCausalLM": "modeling_hostile.Model"}}')
    code = f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
    (directory / "configuration_hostile.py").write_text(code)
    (directory / "modeling_hostile.py").write_text(code)
    (directory / "model.safetensors").write_bytes(b"\0" * 16)
    return directory


def test_a_directory_that_needs_its_own_code_exits_2_and_runs_nothing(tmp_path):
    marker = tmp_path / "MARKER"
    directory = hostile_directory(tmp_path / "hostile", marker)
    draftnas = Path(sys.executable).with_name("draftnas")
    done = subprocess.run(
        [str(draftnas), "target", f"target={directory}", f"run_dir={tmp_path / 'run'}"],
        input="y\ny\ny\n", capture_output=True, text=True, timeout=300, check=False,
        env=os.environ | {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")})
    assert not marker.exists()
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "auto_map" in done.stderr and str(directory / "config.json") in done.stderr


def test_every_from_pretrained_call_refuses_remote_code():
    """What the issue asks `grep` to confirm: every transformers `from_pretrained(` call in the
    project's code passes trust_remote_code=False (unset, transformers asks on stdin)."""
    unsafe = []
    for folder in ("targets", "specdec", "search_spaces", "supernet", "hardware_profiles", "nas",
                   "experiments", "tests"):
        for path in sorted((REPO / folder).rglob("*.py")):
            text = path.read_text()
            for match in re.finditer(r"[\w.]+\.from_pretrained\(", text):
                if match.group(0).endswith(OWN_LOADERS):
                    continue
                depth, end = 1, match.end()
                while depth:
                    depth += {"(": 1, ")": -1}.get(text[end], 0)
                    end += 1
                if "trust_remote_code=False" not in text[match.end():end]:
                    unsafe.append(f"{path.relative_to(REPO)}:{text.count(chr(10), 0, match.start()) + 1}")
    assert not unsafe, unsafe
