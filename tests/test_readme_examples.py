"""The README's examples work: its marked Python blocks run, and its commands' keys exist.

- Every ```python block on the line after `<!-- readme-test -->` runs alone, in a fresh namespace
  and a temporary working directory, exactly as written. The blocks use the embedded `shapes`
  target; tests/conftest.py points $DRAFTNAS_HOME at the test home, where `shapes` is its quick
  `test` build (built once, about 25 s, shared with the other tests; then loaded in a fraction
  of a second), so a block takes about a second. Its text output differs from the full build's;
  the calls and the blocks' own asserts are the same.
- Every `draftnas <command> ...` of the README's ```sh blocks (also `torchrun ... -m nas.cli`) is
  composed with that command's real config (conf/<command>.yaml checked against its dataclass):
  a key that does not exist or a value of the wrong type fails. Nothing runs.
"""

import re
import shlex
from pathlib import Path

import pytest
import torch

from nas.commands import COMMANDS, compose_config

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- readme-test -->"
# The README's Python section shows these; a block that stops using them is not the example.
API = ("load_target(", "DraftModel.from_pretrained(", "SpeculativeDecoder(", ".generate(",
       ".stats.")


def python_blocks(text: str) -> list[str]:
    return re.findall(re.escape(MARKER) + r"\n```python\n(.*?)\n```", text, flags=re.DOTALL)


def draftnas_commands(text: str) -> list[tuple[str, list[str]]]:
    """(command, overrides) of every draftnas invocation in the sh blocks."""
    found = []
    for block in re.findall(r"```sh\n(.*?)\n```", text, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            for index, word in enumerate(words):
                if word == "draftnas" or word.endswith("/draftnas") or (
                        word == "nas.cli" and words[index - 1] == "-m"):
                    found.append((words[index + 1], words[index + 2:]))
                    break
    return found


def run_block(code: str, name: str) -> None:
    # The code is this repository's own README, as a user would paste it.
    exec(compile(code, name, "exec"), {"__name__": "__readme__"})  # noqa: S102


BLOCKS = python_blocks(README.read_text())
COMMAND_LINES = draftnas_commands(README.read_text())


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models; a shared CPU makes extra threads slower
    yield tmp_path
    torch.set_num_threads(threads)


def test_the_readme_has_its_examples():
    assert len(BLOCKS) >= 2, f"expected >= 2 python blocks after {MARKER} in README.md"
    joined = "\n".join(BLOCKS)
    assert all(call in joined for call in API), [call for call in API if call not in joined]
    assert len(COMMAND_LINES) >= 20 and {command for command, _ in COMMAND_LINES} == set(COMMANDS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_python_block_runs(index, in_tmp_dir):
    run_block(BLOCKS[index], f"README.md python block {index + 1}")


def test_a_broken_block_fails(in_tmp_dir):
    """The runner really executes the README: a misspelt call in its first block raises."""
    broken = BLOCKS[0].replace("DraftModel.from_pretrained(", "DraftModel.from_pretrainedd(")
    assert broken != BLOCKS[0]
    with pytest.raises(AttributeError, match="from_pretrainedd"):
        run_block(broken, "README.md python block 1, broken")


@pytest.mark.parametrize("command, overrides", COMMAND_LINES,
                         ids=[" ".join([c, *o])[:80] for c, o in COMMAND_LINES])
def test_command_keys_exist(command, overrides):
    assert command in COMMANDS, f"README uses `draftnas {command}`, not a command"
    compose_config(command, [word for word in overrides if word not in ("-h", "--help")])


def test_a_wrong_key_fails_to_compose():
    command, overrides = COMMAND_LINES[0]
    with pytest.raises(Exception, match="no_such_key"):
        compose_config(command, [*overrides, "no_such_key=1"])
