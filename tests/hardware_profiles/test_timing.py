"""Timing: median and spread of the timed calls, warm-up excluded, resets untimed, budget."""

import time

import torch

from hardware_profiles.device import current_device
from hardware_profiles.timing import TimingConfig, pinned_threads, summarize, time_call


def test_summary_is_median_and_interquartile_range():
    timing = summarize([5.0, 1.0, 2.0, 3.0, 4.0])
    assert timing.ms == 3.0 and timing.repeats == 5
    assert 1.5 <= timing.spread <= 3.5


def test_warmup_is_not_timed_and_reset_runs_after_every_call():
    calls, resets = [], []
    timing = time_call(lambda: calls.append(1), TimingConfig(warmup=2, repeats=4), "cpu",
                       reset=lambda: resets.append(1))
    assert len(calls) == 6 and len(resets) == 6 and timing.repeats == 4


def test_reset_time_is_not_counted():
    timing = time_call(lambda: None, TimingConfig(warmup=0, repeats=3), "cpu",
                       reset=lambda: time.sleep(0.02))
    assert timing.ms < 10


def test_a_slow_call_stops_at_the_budget_after_min_repeats():
    cfg = TimingConfig(warmup=0, repeats=100, min_repeats=3, budget_s=0.01)
    timing = time_call(lambda: time.sleep(0.005), cfg, "cpu")
    assert 3 <= timing.repeats < 10 and timing.ms >= 5


def test_threads_are_pinned_and_restored_and_recorded():
    before = torch.get_num_threads()
    with pinned_threads(1):
        assert torch.get_num_threads() == 1
        device = current_device("cpu", torch.float32, torch.get_num_threads())
    assert torch.get_num_threads() == before
    assert device.kind == "cpu" and device.threads == 1 and device.dtype == "float32"
    assert device.torch_version == torch.__version__ and device.name
