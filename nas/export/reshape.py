"""After a refinement, the refined draft's decoding shape is chosen again.

The search chose the draft's shape with the supernet's weights: an under-trained draft accepts
little, so short chains win (on smollm2, chain 1 after 120 supernet steps). Trained alone, the
same draft accepts more, and deeper shapes gain the most (there: tau +0.18 on chain 1, +0.51 on
tree 3/2/6, which came within 1% of chain 1), so which shape pays can change. Every shape the
supernet was trained for is decoded on held-out prompts with the refined draft (the search's
measured-shapes stage:
nas.measured_shapes.decoded_tau, drafting every step) and priced on the search's latency table at
the search's context; the fastest within the search's latency budget is recommended, and its
measured tau and predicted speedup replace the search's in the export's provenance.
"""

import json
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from hardware_profiles.predictor import LatencyPredictor
from nas.candidates import Candidate
from nas.export.errors import ExportError
from nas.export.selection import Selection
from nas.measured_shapes import decoded_tau, prepared
from specdec.model import DraftModel
from specdec.shape import DecodeShape
from supernet.corpus import CorpusItem


@dataclass
class ShapeRow:
    shape: str
    tau: float  # measured with the refined draft, bonus token included
    latency_ms: float
    speedup: float
    feasible: bool  # within the search's latency budget


def reshape(selection: Selection, draft: DraftModel, shapes: tuple[DecodeShape, ...],
            corpus: list[CorpusItem]) -> tuple[Selection, list[ShapeRow]]:
    """`selection` with the shape of `shapes` that is predicted fastest for `draft` (decoded on
    `corpus`, held-out prompts), and every shape's row."""
    target, arch = draft.target, selection.candidate.arch
    predictor = LatencyPredictor.from_file(table_of(selection), target.fingerprint)
    budget = selection.objective.get("latency_budget_ms")
    # The search's default context: the held-out sequences' mean length (nas.commands.search).
    context = (search_context(selection.search_dir) or selection.objective.get("context")
               or sum(len(item.input_ids) for item in corpus) / len(corpus))
    prompts = [prepared(target, item) for item in corpus]
    rows = []
    for shape in tqdm(shapes, desc="shapes of the refined draft", unit="shape", leave=False):
        tau = decoded_tau(target, draft, shape, prompts)
        latency = predictor.step_ms(arch, shape, context, tau)
        rows.append(ShapeRow(shape.label, round(tau, 4), round(latency, 3),
                             round(predictor.speedup(arch, shape, tau, context), 4),
                             budget is None or latency <= budget))
    feasible = [row for row in rows if row.feasible]
    if not feasible:  # the search's own shape was within the budget: keep it
        return selection, rows
    best = max(feasible, key=lambda row: row.speedup)
    candidate = Candidate(arch, DecodeShape.parse(best.shape))
    predicted = {"tau": best.tau, "latency_ms": best.latency_ms, "speedup": best.speedup}
    decode = {"shape": best.shape, "tau": best.tau, "tau_source": "measured after refinement",
              "predicted_speedup": best.speedup, "prompts": len(corpus),
              "search": selection.decode}
    return replace(selection, candidate=candidate, predicted=predicted, decode=decode), rows


def table_of(selection: Selection) -> Path:
    path = Path(str(selection.hardware_table))
    if not path.is_file():
        raise ExportError(f"the search's latency table {path} is missing, so the refined draft's "
                          "decoding shape cannot be priced; restore it, or keep the search's "
                          "shape with validation_prompts=0")
    return path


def search_context(search_dir: Path) -> float | None:
    """The context the search priced its trials at (its result.json), if it recorded one."""
    try:
        return float(json.loads((search_dir / "result.json").read_text())["result"]["context"])
    except (OSError, ValueError, KeyError, TypeError):
        return None

