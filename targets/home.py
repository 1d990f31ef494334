"""Where draftnas keeps what it builds: embedded targets, feature caches. `$DRAFTNAS_HOME` overrides."""

import os
from pathlib import Path


def draftnas_home() -> Path:
    return Path(os.environ.get("DRAFTNAS_HOME", Path.home() / ".cache" / "draftnas")).expanduser()
