"""What `draftnas search` leaves in its run directory (the export command reads these two files).

trials.csv (pandas, one row per completed trial, every candidate distinct, sorted by trial):
    trial, <the DraftArch fields: interaction, injected_layers (taps joined by ",", "" for none),
    num_layers, num_heads, intermediate_size, vision_keep_ratio, draft_vocab_size (empty: full)>,
    decode (the shape's label: "chain 3", "tree 6/4/32"),
    tau, chain_tau, tree_tau, latency_ms, draft_ms, speedup, constraint, feasible,
    acceptance_by_depth (JSON list), pareto (bool: on the (tau, latency_ms) front of feasible trials)
shapes.csv (when the search measured shapes, nas.measured_shapes): one row per (draft, shape):
    trial (whose draft), the DraftArch fields and decode as in trials.csv, tau (measured), estimated_tau
    (the trial's, when that (draft, shape) was one), latency_ms, draft_ms, speedup, constraint,
    feasible, best (bool)
best.json:
    {"trial": int, "arch": Candidate.to_dict() (the DraftArch fields; decode: the chosen shape),
     "predicted": {"tau": float, "latency_ms": float, "speedup": float},
     "decode": {"shape": label, "tau": float, "tau_source": "measured" | "estimated",
                "predicted_speedup": float, "estimated_tau": float | null},
     "hardware_table": str (path), "supernet": str (the train run's supernet/ dir),
     "target": {"spec": str, "fingerprint": str}, "space": str (space name),
     "objective": {"kind", "latency_budget_ms", "context"}, "searcher": str, "study_name": str}
    With measured shapes, the best is the fastest feasible (draft, shape) of shapes.csv and "tau" is
    the decoder's measurement; without, the best trial of trials.csv with the estimator's tau.
    "latency_ms" is one decoding step (verify + draft cost).
pareto.png: tau against latency_ms for every trial, the front highlighted, the best marked.
importance.png: parameter importance of the dimensions (decode too) for the objective's first value.
    Optuna studies use optuna.importance (fANOVA); Ray and exhaustive trials use the share of the
    variance of that value explained by each dimension's group means (a one-way ANOVA).
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt
import pandas as pd

from nas.candidates import DECODE, Candidate
from nas.measured_shapes import ShapeMeasurement, best_measured
from nas.objectives import best_of
from nas.searchers import TrialRecord
from search_spaces.arch import DIMENSIONS

TRIALS_FILE, SHAPES_FILE, BEST_FILE = "trials.csv", "shapes.csv", "best.json"
PARETO_PLOT, IMPORTANCE_PLOT = "pareto.png", "importance.png"


@dataclass
class Provenance:
    """What best.json records beside the trial."""

    hardware_table: str
    supernet: str
    target_spec: str
    target_fingerprint: str
    space: str
    objective: dict[str, Any]
    searcher: str
    study_name: str


def candidate_columns(candidate: Candidate) -> dict[str, Any]:
    """A candidate as CSV cells: taps joined by ",", the decoding shape as its label."""
    columns = candidate.arch.to_dict()
    columns["injected_layers"] = ",".join(str(tap) for tap in columns["injected_layers"])
    return {**columns, DECODE: candidate.shape.label}


def trials_frame(records: list[TrialRecord]) -> pd.DataFrame:
    rows = []
    for record in sorted(records, key=lambda r: r.number):
        arch = candidate_columns(record.result.candidate)
        metrics = record.result.metrics()
        metrics["acceptance_by_depth"] = json.dumps(metrics["acceptance_by_depth"])
        rows.append({"trial": record.number, **arch, **metrics})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["pareto"] = pareto_mask(frame)
    return frame


def pareto_mask(frame: pd.DataFrame) -> pd.Series:
    """Feasible trials no other feasible trial beats on both higher tau and lower latency."""
    feasible = frame[frame["feasible"]]
    on_front = []
    for _, row in frame.iterrows():
        dominated = ((feasible["tau"] >= row["tau"]) & (feasible["latency_ms"] <= row["latency_ms"])
                     & ((feasible["tau"] > row["tau"])
                        | (feasible["latency_ms"] < row["latency_ms"]))).any()
        on_front.append(bool(row["feasible"]) and not dominated)
    return pd.Series(on_front, index=frame.index)


def shapes_frame(measurements: list[ShapeMeasurement],
                 best: ShapeMeasurement | None) -> pd.DataFrame:
    return pd.DataFrame([
        {"trial": m.trial, **candidate_columns(m.candidate), "tau": m.tau, "estimated_tau": m.estimated_tau,
         "latency_ms": m.latency_ms, "draft_ms": m.draft_ms, "speedup": m.speedup,
         "constraint": m.constraint, "feasible": m.feasible, "best": m is best}
        for m in measurements])


def write_reports(run_dir: Path, records: list[TrialRecord], provenance: Provenance,
                  importance: dict[str, float] | None = None,
                  measurements: list[ShapeMeasurement] | None = None) -> dict[str, Any]:
    """Write every report; returns the paths and the best (trial number, TrialResult or
    ShapeMeasurement), None when none is feasible: with `measurements`, the fastest measured
    (draft, shape), else the best trial. `importance`: precomputed parameter importance
    (Optuna's), else the variance share."""
    frame = trials_frame(records)
    paths = {"trials": str(write_csv(frame, run_dir / TRIALS_FILE))}
    best = best_of([(record.number, record.result) for record in records])
    if measurements:
        chosen = best_measured(measurements)
        paths["shapes"] = str(write_csv(shapes_frame(measurements, chosen),
                                        run_dir / SHAPES_FILE))
        best = None if chosen is None else (chosen.trial, chosen)
    else:  # a continued search without the stage: no stale measurements
        (run_dir / SHAPES_FILE).unlink(missing_ok=True)
    if best is not None:
        paths["best"] = str(write_best(run_dir / BEST_FILE, *best, provenance,
                                       decode_record(best[1])))
    if not frame.empty:
        paths["pareto_plot"] = str(plot_pareto(frame, best[0] if best else None,
                                               run_dir / PARETO_PLOT))
        weights = importance if importance is not None else variance_importance(
            frame, provenance.objective["kind"])
        paths["importance_plot"] = str(plot_importance(weights, run_dir / IMPORTANCE_PLOT))
    return {"paths": paths, "best": best}


def decode_record(best: Any) -> dict[str, Any]:
    """best.json's "decode": the chosen shape, and whether its tau was measured or estimated."""
    measured = isinstance(best, ShapeMeasurement)
    return {"shape": best.candidate.shape.label, "tau": best.tau,
            "tau_source": "measured" if measured else "estimated",
            "predicted_speedup": best.speedup,
            "estimated_tau": best.estimated_tau if measured else best.tau}


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    frame.to_csv(partial, index=False)
    os.replace(partial, path)
    return path


def write_best(path: Path, number: int, result: Any, provenance: Provenance,
               decode: dict[str, Any] | None = None) -> Path:
    payload = {
        "trial": number,
        "arch": result.candidate.to_dict(),
        "predicted": {"tau": result.tau, "latency_ms": result.latency_ms,
                      "speedup": result.speedup},
        "decode": decode,
        "hardware_table": provenance.hardware_table,
        "supernet": provenance.supernet,
        "target": {"spec": provenance.target_spec, "fingerprint": provenance.target_fingerprint},
        "space": provenance.space,
        "objective": provenance.objective,
        "searcher": provenance.searcher,
        "study_name": provenance.study_name,
    }
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(partial, path)
    return path


def variance_importance(frame: pd.DataFrame, kind: str) -> dict[str, float]:
    """Share of the objective's variance explained by each dimension's group means."""
    value = frame["speedup" if kind == "speedup" else "tau"]
    total = float(((value - value.mean()) ** 2).sum())
    shares = {}
    for dimension in (*DIMENSIONS, DECODE):
        groups = value.groupby(frame[dimension].astype(str))
        between = float((groups.count() * (groups.mean() - value.mean()) ** 2).sum())
        shares[dimension] = between / total if total > 0 else 0.0
    norm = sum(shares.values())
    return {name: share / norm if norm > 0 else 0.0 for name, share in shares.items()}


def plot_pareto(frame: pd.DataFrame, best: int | None, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(6, 4.5))
    front = frame[frame["pareto"]].sort_values("latency_ms")
    axes.scatter(frame["latency_ms"], frame["tau"], s=12, alpha=0.5, label="trials")
    axes.plot(front["latency_ms"], front["tau"], "o-", color="tab:red", ms=4, label="Pareto front")
    if best is not None:
        row = frame[frame["trial"] == best].iloc[0]
        axes.scatter([row["latency_ms"]], [row["tau"]], marker="*", s=200, color="gold",
                     edgecolor="black", zorder=5, label=f"best (trial {best})")
    axes.set_xlabel("predicted latency per decoding step (ms)")
    axes.set_ylabel("estimated tau (tokens per step, bonus included)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_importance(importance: dict[str, float], path: Path) -> Path:
    names = sorted(importance, key=importance.get)
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.barh(names, [importance[name] for name in names])
    axes.set_xlabel("importance (share)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
