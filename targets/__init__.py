"""The frozen target: one adapter over every supported HF VLM family and plain causal LMs."""

from targets.cache import TargetCache, crop_cache, select_cache
from targets.errors import TargetError
from targets.loading import load_target
from targets.target import MERGED_INPUT_TAP, PreparedInputs, Target, TargetOutput

__all__ = [
    "MERGED_INPUT_TAP",
    "PreparedInputs",
    "Target",
    "TargetCache",
    "TargetError",
    "TargetOutput",
    "crop_cache",
    "load_target",
    "select_cache",
]
