"""Fixtures of the hardware-profile tests; the shared values live in `latency_fixtures`
(a conftest is never imported by name: conftest modules of different folders collide)."""

from latency_fixtures import small_space_file

__all__ = ["small_space_file"]
