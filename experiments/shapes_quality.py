"""Build the `shapes` target from scratch, time it and its cached load, and measure its quality.

Usage: HF_HUB_OFFLINE=1 .venv/bin/python experiments/shapes_quality.py --home /tmp/shapes_home
Prints one JSON object: build wall and CPU seconds (the training child's user+sys), the load
average seen while building, cached-load seconds, and `evaluate`'s figures on the test split.
"""

import argparse
import json
import os
import resource
import time
from pathlib import Path

from transformers import AutoProcessor, LlavaForConditionalGeneration

from targets.embedded.shapes import ensure_built
from targets.embedded.shapes.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--budget", default="full")
    parser.add_argument("--image-limit", type=int, default=None,
                        help="evaluate on the first N test images only (default: all 1000)")
    arguments = parser.parse_args()

    start = time.perf_counter()
    model_dir = ensure_built(arguments.home, budget=arguments.budget)
    build_seconds = time.perf_counter() - start
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_average_after_build = os.getloadavg()

    start = time.perf_counter()
    cached_dir = ensure_built(arguments.home, budget=arguments.budget)
    LlavaForConditionalGeneration.from_pretrained(cached_dir, trust_remote_code=False)
    AutoProcessor.from_pretrained(cached_dir, trust_remote_code=False)
    cached_load_seconds = time.perf_counter() - start

    results = {
        "model_dir": str(model_dir),
        "build_wall_seconds": round(build_seconds, 1),
        "build_cpu_seconds": round(child.ru_utime + child.ru_stime, 1),
        "load_average_1_5_15_after_build": load_average_after_build,
        "cached_load_seconds": round(cached_load_seconds, 2),
        **evaluate(model_dir, image_limit=arguments.image_limit),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
