"""Every command-line option says what it does, and every option with a default says which."""

from __future__ import annotations

import argparse

from edge_agent.cli import build_parser


def _parsers(p: argparse.ArgumentParser, name: str = "edge-agent"):
    yield name, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_has_a_description_and_states_its_default() -> None:
    undocumented, silent_default = [], []
    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            label = f"{name} {action.option_strings[0] if action.option_strings else action.dest}"
            if not action.help:
                undocumented.append(label)
            elif action.default not in (None, False, []) and "default" not in action.help:
                silent_default.append(label)
    assert not undocumented, f"options without help: {undocumented}"
    assert not silent_default, f"options whose help hides the default: {silent_default}"
