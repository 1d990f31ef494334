"""`SubnetEvaluator`: a trial's result takes each tau from the estimate field of the same name."""

from types import SimpleNamespace

from nas.candidates import Candidate
from nas.estimator import AcceptanceEstimate
from nas.objectives import Objective, ObjectiveConfig, SubnetEvaluator
from search_spaces import DraftArch
from specdec.shape import DecodeShape

TREE_TRIAL = Candidate(DraftArch("concat", (2,), 1, 4, 128, 1.0, None), DecodeShape(3, 2, 6))


class FixedEstimator:
    """A tree's estimate: the shape's (top_k) tau above the chain's of the same depth."""

    def estimate(self, draft, shape) -> AcceptanceEstimate:
        return AcceptanceEstimate(tau=2.5, acceptance_by_depth=[0.9, 0.6, 0.3], chain_tau=1.75,
                                  tree_tau=2.5, steps=10, exact=False)


class FlatPredictor:
    def breakdown(self, arch, shape, context, tau):
        return SimpleNamespace(step_ms=4.0, draft_ms=1.0)

    def speedup(self, arch, shape, tau, context):
        return tau / 2


def test_a_trees_chain_tau_is_the_chains_not_the_trees():
    evaluator = SubnetEvaluator(SimpleNamespace(activate=lambda arch: arch), FixedEstimator(),
                                FlatPredictor(), Objective(ObjectiveConfig()), context=64.0)
    result = evaluator.evaluate(TREE_TRIAL)
    assert (result.tau, result.chain_tau, result.tree_tau) == (2.5, 1.75, 2.5)
    assert result.metrics()["chain_tau"] == 1.75  # the trials.csv column
