"""Tests run offline and never touch the user's cache.

Embedded targets are built into a test home of their own (kept between runs: their directories
are named by recipe hash, so a changed recipe rebuilds), and `shapes` uses its quick `test`
budget: behaviour tests need a small trained target, not the full one.
"""

import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("DRAFTNAS_SHAPES_BUDGET", "test")
os.environ.setdefault(
    "DRAFTNAS_HOME", str(Path(tempfile.gettempdir()) / f"draftnas-test-home-{os.getuid()}")
)
