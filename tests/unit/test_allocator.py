"""The allocator settings the live agent applies at start (edge_agent/ops/allocator.py)."""

from __future__ import annotations

import platform

import pytest

from edge_agent.ops.allocator import SETTINGS, tune_allocator


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_settings_apply_except_those_the_operator_gave_in_the_environment(monkeypatch):
    for env in SETTINGS:
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert tune_allocator() == ["MALLOC_MMAP_THRESHOLD_=131072", "MALLOC_TRIM_THRESHOLD_=131072"]
