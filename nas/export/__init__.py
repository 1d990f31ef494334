"""Export: the searched draft as a standalone checkpoint with its provenance.

    selection = select_trial("runs/search/<run>", trial=None)     # best.json / trials.csv
    superdraft, meta = load_search_supernet(selection, target)    # checks the pairings
    refine(superdraft, selection.candidate.arch, corpus, meta.intermediate_tap, 20, RefineConfig())
    refined = extract_selection(superdraft, selection)
    selection, rows = reshape(selection, refined, meta.shapes, held_out)  # its shape, chosen anew
    draft = extract_selection(superdraft, selection)              # DraftModel, provenance set
    write_eagle3(draft, "<dir>")                                  # format=eagle3, where it fits

`draftnas export` (nas/commands/export.py) runs these and saves the draft under <run_dir>/draft/.
"""

from nas.export.eagle3 import check_eagle3, eagle3_mismatches, write_eagle3
from nas.export.errors import ExportError
from nas.export.extract_best import extract_selection, load_search_supernet
from nas.export.refine import RefineConfig, refine
from nas.export.reshape import reshape, table_of
from nas.export.selection import Selection, select_trial

__all__ = [
    "ExportError",
    "RefineConfig",
    "Selection",
    "check_eagle3",
    "eagle3_mismatches",
    "extract_selection",
    "load_search_supernet",
    "refine",
    "reshape",
    "select_trial",
    "table_of",
    "write_eagle3",
]
