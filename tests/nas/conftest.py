"""The export tests' search run directory (export_search.py) as fixtures for test_export.py and
test_export_refine.py."""

from export_search import search, supernet, target, target_dir  # noqa: F401
