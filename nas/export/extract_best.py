"""Load the target and supernet a search used, and extract one trial's draft with its provenance.

Three pairings are checked before any weight is copied, each a one-line ExportError: the target
loaded now is the one the search ran against (best.json's fingerprint), the supernet was trained
for that target, and the trial's arch is a point of the supernet's space (its decoding shape is
not the supernet's business: it serves any). The extracted draft's config records the trial's
shape as its recommended one (DraftConfig.decode).
"""

from typing import Any

from nas.export.errors import ExportError
from nas.export.selection import Selection
from search_spaces.errors import SpaceError
from specdec.model import DraftModel
from supernet import SuperDraft, SupernetMeta, extract, load_supernet


def load_search_supernet(selection: Selection, target: Any) -> tuple[SuperDraft, SupernetMeta]:
    """The trained supernet of the search, for `target`, checked against the selection."""
    if target.fingerprint != selection.target_fingerprint:
        raise ExportError(
            f"target {target.spec!r} has fingerprint {target.fingerprint[:12]} but the search in "
            f"{selection.search_dir} ran against {selection.target_fingerprint[:12]}; give "
            "target=<the search's target>")
    meta_path = selection.supernet / "meta.json"
    if meta_path.is_file():
        meta = SupernetMeta.load(selection.supernet)
        if meta.target_fingerprint != target.fingerprint:
            raise ExportError(
                f"supernet {selection.supernet} was trained for target "
                f"{meta.target_fingerprint[:12]}, not the search's {target.fingerprint[:12]}; "
                "point best.json's 'supernet' at the train run of this target")
    superdraft, meta = load_supernet(selection.supernet, target)
    try:
        superdraft.space.validate(selection.candidate.arch)
    except SpaceError as error:
        raise ExportError(f"trial {selection.trial} does not fit supernet "
                          f"{selection.supernet}: {error}") from None
    return superdraft, meta


def extract_selection(superdraft: SuperDraft, selection: Selection,
                      refinement: dict[str, Any] | None = None) -> DraftModel:
    """The trial's draft, sliced out of `superdraft`, with the provenance export records."""
    provenance = selection.provenance()
    if refinement is not None:
        provenance["refinement"] = refinement
    return extract(superdraft, selection.candidate.arch, provenance, selection.candidate.shape)
