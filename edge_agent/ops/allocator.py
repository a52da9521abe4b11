"""glibc's malloc tuned for a long-running process of many decoding threads (issue 14: RSS growth).

Measured with scripts/soak.py and scripts/memtrace.py: the agent's Python heap and its objects
by type stay flat over a soak, while RSS grew in steps (default allocator: 330 -> 459 MB over
9 minutes of 4 cameras, still rising). Each thread that allocates gets its own arena (up to 8 per
core) and, once a large block is freed, glibc raises its mmap threshold up to 32 MB, so frame-sized
buffers (a 640x360 BGR frame is 675 KiB) then come from those arenas, which fragment and are not
given back. With at most 2 arenas and fixed 128 KiB mmap and trim thresholds, large buffers are
mapped and unmapped whole: in the same run, RSS stayed at 351 MB from the first minute on.
An operator's own MALLOC_* environment variables win (glibc reads them at start; they are not
overridden here).
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

# mallopt parameters (glibc malloc.h) and the values set
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
SETTINGS = {"MALLOC_ARENA_MAX": (M_ARENA_MAX, 2), "MALLOC_MMAP_THRESHOLD_": (M_MMAP_THRESHOLD, 128 * 1024),
            "MALLOC_TRIM_THRESHOLD_": (M_TRIM_THRESHOLD, 128 * 1024)}


def tune_allocator() -> list[str]:
    """Apply SETTINGS not already given in the environment; before the threads start (an arena
    limit binds only arenas made later). Returns what was set; [] where malloc is not glibc's."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return []  # musl or another libc: nothing to tune
    done = [f"{env}={value}" for env, (param, value) in SETTINGS.items()
            if env not in os.environ and mallopt(param, value) == 1]
    if done:
        log.debug("malloc: %s", ", ".join(done))
    return done
