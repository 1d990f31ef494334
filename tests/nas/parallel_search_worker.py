"""One search worker of tests/nas/test_parallel_search.py, run as its own process:
`python parallel_search_worker.py <run_dir> <storage> <n_trials> <start file>`.

It searches test_searchers' small space with its synthetic evaluator, slowed to 20 ms a trial so
that the workers' searches overlap, starting when <start file> appears (all workers at once), and
prints the arch keys it evaluated, one per line.
"""

import sys
import time
from pathlib import Path

from test_searchers import SyntheticEvaluator, problem

from nas.searchers import SearcherConfig, search


class SlowEvaluator(SyntheticEvaluator):
    def evaluate(self, arch):
        time.sleep(0.02)
        return super().evaluate(arch)


def main(run_dir: str, storage: str, n_trials: str, start_file: str) -> None:
    search_problem = problem(Path(run_dir), int(n_trials))
    evaluator = SlowEvaluator(search_problem.objective)
    search_problem.evaluator = evaluator
    print("ready", flush=True)
    while not Path(start_file).exists():
        time.sleep(0.01)
    search(search_problem, SearcherConfig(name="tpe", storage=storage))
    print("\n".join(evaluator.evaluated), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
