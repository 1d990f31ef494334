"""The learning-rate schedule of training and of export's refinement: a linear warm-up, then a
cosine from 1 to min_lr_ratio at the last step; no warm-up and a ratio of 1 hold it constant."""

import math
from itertools import pairwise

import pytest

from supernet.trainer import lr_factor


def test_warm_up_then_a_cosine_to_the_floor():
    steps, warmup, floor = 100, 10, 0.1
    assert [lr_factor(step, steps, warmup, floor) for step in range(3)] == [0.1, 0.2, 0.3]
    assert lr_factor(warmup, steps, warmup, floor) == 1.0
    assert lr_factor(55, steps, warmup, floor) == pytest.approx(0.55)  # half way: the middle
    assert lr_factor(steps, steps, warmup, floor) == pytest.approx(floor)
    curve = [lr_factor(step, steps, warmup, floor) for step in range(warmup, steps + 1)]
    assert all(later <= earlier for earlier, later in pairwise(curve))


def test_no_warm_up_and_a_floor_of_one_hold_the_rate_constant():
    assert {lr_factor(step, 50, 0, 1.0) for step in range(51)} == {1.0}
    assert math.isclose(lr_factor(0, 50, 0, 0.5), 1.0)
