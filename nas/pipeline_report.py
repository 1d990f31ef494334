"""What `draftnas pipeline` says as it runs and when it ends: a line per stage, and the summary
table of its bench (summary.md)."""

import time
from pathlib import Path
from typing import Any

SUMMARY_COLUMNS = {"method": "method", "tokens_per_s": "tokens/s", "speedup": "speedup",
                   "decode_speedup": "speedup after prefill", "tau": "tau",
                   "equals_vanilla": "equals vanilla"}


class Progress:
    """Lines stamped with the time since the run started: `[pipeline 01:02.5] message`."""

    def __init__(self, name: str) -> None:
        self.name, self.started = name, time.perf_counter()

    def say(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        print(f"[{self.name} {int(elapsed // 60):02d}:{elapsed % 60:04.1f}] {message}", flush=True)


def summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: row.get(key) for key in SUMMARY_COLUMNS} for row in rows]


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "-" if value is None else str(value)


def summarise(run_dir: Path, title: str, bench: Any, runtime: str, seconds: float,
              stages: list[str]) -> str:
    """Write summary.md: the bench's table (`bench`: the bench stage's result), its setting, the
    pipeline's time (`seconds`: every stage's), the plots that exist; return its text."""
    load = bench.load_average_1m
    setting = (f"{bench.prompts} {bench.prompt_set} prompts, {runtime}; pipeline "
               f"{seconds / 60:.1f} min; load average (1 min) during the bench "
               f"{load['before']:.2f} -> {load['after']:.2f}")
    plots = [Path(bench.files["png"]), run_dir / "04-search" / "pareto.png"]
    lines = [f"# {title}", "", setting, "", "| " + " | ".join(SUMMARY_COLUMNS.values()) + " |",
             "|" + "---|" * len(SUMMARY_COLUMNS)]
    lines += ["| " + " | ".join(cell(row[key]) for key in SUMMARY_COLUMNS) + " |"
              for row in summary_rows(bench.rows)]
    lines += ["", "tau: tokens per target forward, the bonus token included.", "",
              *[f"![{path.stem}]({path.relative_to(run_dir)})" for path in plots if path.is_file()],
              "", "stages: " + ", ".join(stages), ""]
    text = "\n".join(lines)
    (run_dir / "summary.md").write_text(text)
    return text
