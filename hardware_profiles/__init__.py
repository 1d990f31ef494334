"""Latency on one machine: the profiler, the versioned latency tables, and the predictor.

    draftnas profile target=shapes search_space=dream_s   # -> $DRAFTNAS_HOME/tables/cpu-shapes_full-<fp>.json

    predictor = LatencyPredictor.from_file(path, target.fingerprint, device_of(target, threads))
    predictor.speedup(arch, shape, tau, ctx)     # tau * T_target(1) / (T_verify + draft cost)
    predictor.draft_ms(arch, shape, ctx, tau)    # the draft's cost per decoding step, ms
    predictor.step_ms(arch, shape, ctx, tau)     # draft + verification, ms
    predictor.breakdown(arch, shape, ctx, tau)   # tree / advance / verify / T_target(1)

`arch` is a `search_spaces.DraftArch` and `shape` the `specdec.shape.DecodeShape` it decodes with
(one table serves every shape its profile listed); `tau` is tokens per step with the bonus token
(specdec's DecodeStats.tau); `ctx` is the target's context (cached tokens) at the step. A bad
table or a space value it lacks raises `TableError` (one line); a table from another device warns.
Where tables live and which one serves a target and a device: `hardware_profiles.table_store`.
"""

from hardware_profiles.predictor import LatencyPredictor, StepBreakdown
from hardware_profiles.table import LatencyTable, TableError, load_table

__all__ = ["LatencyPredictor", "LatencyTable", "StepBreakdown", "TableError", "load_table"]
