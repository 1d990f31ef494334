"""Peak resident memory of this process during one bench method.

Linux keeps the peak (VmHWM) in /proc/self/status and resets it when "5" is written to
/proc/self/clear_refs, so each method gets its own peak. Elsewhere, or where the reset is not
allowed, the process-lifetime peak from getrusage is reported and flagged as such.
"""

import resource
import sys
from dataclasses import dataclass
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK = "5"


@dataclass
class PeakRss:
    mib: float
    since_reset: bool  # False: the peak since the process started (the reset was not possible)


def reset_peak_rss() -> bool:
    """Start a new peak window; False where the kernel does not let us."""
    try:
        CLEAR_REFS.write_text(RESET_PEAK)
    except OSError:
        return False
    return True


def read_peak_rss(since_reset: bool) -> PeakRss:
    if since_reset:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return PeakRss(int(line.split()[1]) / 1024, True)
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return PeakRss(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), False)
