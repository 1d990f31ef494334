"""The bench's files in the run directory: bench.csv (pandas), bench.md, bench.png."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in tests
import matplotlib.pyplot as plt
import pandas as pd

MD_COLUMNS = {
    "method": "method", "tokens_per_s": "tokens/s", "speedup": "speedup",
    "decode_speedup": "speedup after prefill", "tau": "tau",
    "drafted_steps": "drafted steps",
    "acceptance_by_depth": "acceptance by depth", "time_draft_s": "draft s",
    "time_target_s": "target s", "time_overhead_s": "overhead s", "t_step_ms": "step ms",
    "efficiency": "efficiency", "equals_vanilla": "equals vanilla", "peak_rss_mib": "peak RSS MiB",
}
NOTES = (
    "tau: tokens per target forward after the prefill, bonus token included (vanilla = 1), over "
    "all steps. drafted steps: steps that verified draft tokens (adaptive decoding takes plain "
    "steps while drafting does not pay). "
    "acceptance by depth d: share of drafted steps accepting more than d draft tokens "
    "(0: none accepted). "
    "speedup after prefill: tokens/s after the prompt's forward (and the draft's prefill) over "
    "vanilla's, what a latency table predicts. "
    "step ms: draft + target time per step (vanilla's is T_target(1)). "
    "efficiency: speedup / (tau x T_target(1) / step ms), our drafts only. "
    "n/a: not measured for that method (or sampling, for 'equals vanilla')."
)


def write_report(rows: Sequence[dict[str, Any]], run_dir: Path, title: str) -> dict[str, Path]:
    run_dir = Path(run_dir)
    paths = {"csv": run_dir / "bench.csv", "md": run_dir / "bench.md", "png": run_dir / "bench.png"}
    table = pd.DataFrame(list(rows))
    flat = table.assign(acceptance_by_depth=table["acceptance_by_depth"].map(depth_list))
    flat.to_csv(paths["csv"], index=False)
    paths["md"].write_text(markdown(flat, title))
    plot(table, paths["png"], title)
    return paths


def depth_list(values: Sequence[float]) -> str:
    return " ".join(f"{value:.2f}" for value in values) if len(values) else "0"


def cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown(table: pd.DataFrame, title: str) -> str:
    header = "| " + " | ".join(MD_COLUMNS.values()) + " |"
    rule = "|" + "|".join("---" for _ in MD_COLUMNS) + "|"
    lines = ["| " + " | ".join(cell(row[key]) for key in MD_COLUMNS) + " |"
             for row in table.to_dict("records")]
    return "\n".join([f"# {title}", "", header, rule, *lines, "", NOTES, ""])


def plot(table: pd.DataFrame, path: Path, title: str) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 0.5 * len(table) + 2.5))
    labels = table["method"].tolist()
    for axis, column, name in ((left, "speedup", "speedup over vanilla"), (right, "tau", "tau")):
        values = pd.to_numeric(table[column], errors="coerce").fillna(0.0)
        axis.barh(labels, values, color="tab:blue")
        axis.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
        axis.set_xlabel(name)
        axis.invert_yaxis()
    right.set_yticklabels([])
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
