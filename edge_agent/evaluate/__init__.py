"""`edge-agent eval`: replay footage cases with ground truth and measure alarm quality.

cases.py reads the footage tests' `*.expected.yaml` files; judge.py says why a case fails;
score.py counts recall by object size (per expected visit and per analysed frame) and false
alarms; report.py runs the cases through `replay.run_replay` (or, with `--rtsp`, live.py serves
them from an RTSP server to the live agent) and prints the table.
"""

from .cases import Case, load_cases
from .judge import judge
from .report import CaseResult, evaluate, evaluate_case

__all__ = ["Case", "CaseResult", "evaluate", "evaluate_case", "judge", "load_cases"]
