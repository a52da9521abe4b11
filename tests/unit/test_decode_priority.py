"""Decode threads run below the detector, so an overloaded box still analyses its busy cameras."""

from __future__ import annotations

import os
import threading

from edge_agent.sources.rtsp import DECODE_NICE, lower_priority


def test_a_decode_thread_runs_at_a_lower_priority_and_others_keep_theirs():
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: dict[str, int] = {}

    def decode_thread() -> None:
        lower_priority()
        seen["decode"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    t = threading.Thread(target=decode_thread)
    t.start()
    t.join(10)
    assert seen["decode"] == min(19, base + DECODE_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # only that thread
