"""Zone rules: geometry (zones.py), schedules (schedule.py) and the pure alarm engine (engine.py)."""

from .engine import EngineState, RuleEngine, close, evaluate
from .schedule import in_schedule, parse_window
from .zones import ZoneGeometry, compile_zones, polygon_problem

__all__ = [
    "EngineState",
    "RuleEngine",
    "ZoneGeometry",
    "close",
    "compile_zones",
    "evaluate",
    "in_schedule",
    "parse_window",
    "polygon_problem",
]
