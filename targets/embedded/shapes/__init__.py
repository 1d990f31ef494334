"""The embedded `shapes` target: a small LLaVA trained from scratch on easy-vqa's images.

It answers easy-vqa's questions with one word (yes/no, a shape, a colour) and, asked
`data.DESCRIBE_PROMPT`, writes a 5 sentence description grounded in the pixels (shape,
colour, position, size, background, proportions, edges). `ensure_built(home)` trains it on
first use (a few minutes on 2 CPU cores; `budget="test"` builds a tiny one in seconds) and
returns `home/targets/shapes-<recipe hash>`, a directory that
`LlavaForConditionalGeneration.from_pretrained` and `AutoProcessor.from_pretrained` load.

Data for benches and draft training (`targets.embedded.shapes.data`):
- `load_images(split, limit)`: image id -> RGB PIL image, split "train" or "test".
- `qa_records(split, images)`: `VqaRecord(split, image_id, image, question, answer)` per
  easy-vqa question.
- `description_records(split, images)`: one record per image with `DESCRIBE_PROMPT` and the
  grounded description the target was trained to write.
Prompts go through the processor's chat template: a user message with an image part and a
text part (`{"type": "image"}`, `{"type": "text", "text": question}`).
"""

import os
import subprocess
import sys
from pathlib import Path

from targets.embedded.building import build_once
from targets.embedded.shapes.recipe import recipe_for
from targets.errors import TargetError

TEMP_PREFIX = ".building-shapes-"
BUDGET_ENV = "DRAFTNAS_SHAPES_BUDGET"
# Training runs in a child process so that OpenMP threads wait passively: on a shared 2-core
# machine, spinning threads made each step several times slower than one thread.
TRAIN_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def _train_in_child(budget: str, out_dir: Path) -> None:
    command = [sys.executable, "-m", "targets.embedded.shapes.train", "--budget", budget,
               "--out", str(out_dir)]
    completed = subprocess.run(command, check=False, env={**os.environ, **TRAIN_ENV})
    if completed.returncode != 0:
        raise TargetError(
            f"building the shapes target into {out_dir.parent} failed (exit {completed.returncode});"
            " see the training output above, fix it and run again"
        )


def ensure_built(home: Path, budget: str | None = None) -> Path:
    """The directory of the `shapes` target for `budget`, built (once, atomically: see
    targets.embedded.building) if it is not cached.

    `budget` defaults to `$DRAFTNAS_SHAPES_BUDGET`, else "full"; test suites set it to "test".
    """
    budget = budget or os.environ.get(BUDGET_ENV, "full")
    return build_once(Path(home), f"shapes-{recipe_for(budget).hash()}", TEMP_PREFIX,
                      lambda building: _train_in_child(budget, building))
