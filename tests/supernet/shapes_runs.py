"""`draftnas train` on the quick `shapes` build: the environment and a small multi-point space."""

import os
import sys
from pathlib import Path

# Two draft depths, head counts, interactions (one with cross-attention), injected sets, keep
# ratios and vocabularies: every code path of training, on the 2-layer quick build of shapes.
SMALL_SPACE = """\
name: small
dimensions:
  num_layers: [1, 2]
  num_heads: [0.5, 1.0]
  intermediate_size: [1.0, 2.0]
  interaction: [concat, cross_attention]
  injected_layers:
    - [top]
    - [1, top]
  vision_keep_ratio: [0.5, 1.0]
  draft_vocab_size: [0.25, full]
"""


def write_small_space(directory: Path) -> Path:
    path = directory / "small.yaml"
    path.write_text(SMALL_SPACE)
    return path


def train_env(home: Path) -> dict[str, str]:
    """Environment of a training subprocess: the quick shapes build under `home`, offline."""
    return os.environ | {"DRAFTNAS_HOME": str(home), "DRAFTNAS_SHAPES_BUDGET": "test",
                         "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def train_command(run_dir: Path, space: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "nas.cli", "train", "target=shapes", f"search_space={space}",
            "budget=smoke", f"run_dir={run_dir}", *overrides]
