"""Whether a process of this machine still runs: what tells the leftovers of a killed build or
search worker (removed, failed) from those of a live one (left alone)."""

import os


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True
