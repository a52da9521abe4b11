"""`edge-agent central ...`: the console (`serve`, `users add`) or, with `--out`, the reference subscriber.

The reference subscriber needs only the edge install; the console needs the `[central]` extra,
so its modules are imported only here, when asked for.
"""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from ..config.central import CentralConfig, load_central
from ..errors import EdgeAgentError

ROLES = ("viewer", "operator", "admin")


def cli_central(args: argparse.Namespace) -> int:
    command = getattr(args, "central_command", None)
    if command is None:
        if not args.out:
            raise EdgeAgentError("give --out DIR (the reference subscriber) or a subcommand: serve, users add")
        from ..publish.central import cli_central as reference

        return reference(args)
    if not Path(args.central_config).is_file():
        raise EdgeAgentError(f"{args.central_config}: no such file (configs/central.yaml is the example)")
    cfg = load_central(args.central_config)
    if command == "users":
        return add_user(cfg, args.name, args.role, args.password_env)
    from .serve import serve

    return serve(cfg, duration=args.serve_duration)


def add_user(cfg: CentralConfig, name: str, role: str, password_env: str | None) -> int:
    from ..clock import SystemClock
    from ..web.auth import hash_password
    from .store import Store

    if role not in ROLES:
        raise EdgeAgentError(f"role must be one of {', '.join(ROLES)}")
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            raise EdgeAgentError(f"environment variable {password_env} is not set")
    else:
        password = secrets.token_urlsafe(12)
    store = Store.open(cfg.database.url, cfg.workflow)
    try:
        store.put_user(name, role, hash_password(password), SystemClock().now())
    finally:
        store.close()
    print(f"user {name} ({role}) saved" + ("" if password_env else f"; password (shown once): {password}"))
    return 0
