"""What verifying several tokens costs on this machine, read from a latency table: the curve
T(q) / T(1) of the target's forward over q new tokens, and plain decoding against the memory-bound
limit. Speculative decoding pays where extra tokens are nearly free (the curve stays near 1); a
profile prints both and plots the curve (`draftnas profile`, experiments/latency.md)."""

from pathlib import Path

from hardware_profiles import figures
from hardware_profiles.parts import part_key
from hardware_profiles.table import LatencyTable

# Queries whose ratio a one-line summary quotes.
SUMMARY_QUERIES = (2, 4, 8, 16)


def plain_tokens_per_s(table: LatencyTable) -> float:
    """Plain decoding at the smallest profiled context: 1000 / T_target(1) (a whole step)."""
    ctx = min(table.grid.contexts)
    return 1000.0 / table.entries[part_key("plain", ctx=ctx)].ms


def summary_lines(table: LatencyTable) -> list[str]:
    """`T(q)/T(1)` per context, and plain tokens/s against the memory-bound limit."""
    lines = []
    for ctx, row in table.verification_curve().items():
        ratios = ", ".join(f"q={q} {row[q]:.2f}" for q in SUMMARY_QUERIES if q in row)
        lines.append(f"verification T(q)/T(1) at context {ctx}: {ratios}")
    if table.memory is not None:
        facts = table.memory
        plain = plain_tokens_per_s(table)
        lines.append(f"plain decoding {plain:.1f} tokens/s; memory-bound limit "
                     f"{facts.limit_tokens_per_s:.1f} ({facts.weight_bytes / 1e6:.0f} MB of weights "
                     f"per step at {facts.read_gbs:.1f} GB/s): {plain / facts.limit_tokens_per_s:.0%}")
    return lines


def plot_curve(table: LatencyTable, path: str | Path, title: str) -> Path:
    """T(q)/T(1) against q, one line per context, with the flat ideal."""
    plt = figures.pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    curve = table.verification_curve()
    for ctx, row in curve.items():
        axis.plot(list(row), list(row.values()), marker="o", label=f"context {ctx}")
    queries = sorted({q for row in curve.values() for q in row})
    axis.plot(queries, [1.0] * len(queries), color="gray", linestyle="--", linewidth=1,
              label="free extra tokens")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("new tokens q in one forward")
    axis.set_ylabel("T(q) / T(1)")
    axis.set_title(title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figures.save(figure, path)
