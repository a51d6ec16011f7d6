"""``crawlkit serve``: the dashboard and the JSON/fetch API of a project folder.

``serve`` binds 127.0.0.1 unless told otherwise; any other address needs a token (``--token``
or ``--token-file``), or it refuses to start with exit code 2: the API starts crawls.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import Settings

__all__ = ["add_serve_command", "run_serve"]


SettingsFor = Callable[[dict[str, Any]], Settings]


def add_serve_command(sub: Any) -> None:
    """Add ``serve`` to the ``crawlkit`` parser's subparsers."""
    serve = sub.add_parser(
        "serve", help="the dashboard and the JSON/fetch API for the spiders and jobs of this folder"
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8800, help="default: 8800; 0 picks a free port")
    serve.add_argument("--token", help="a token every page and API call must carry")
    serve.add_argument("--token-file", type=Path, metavar="PATH", help="read the token from this file")
    serve.add_argument(
        "--allow-private",
        action="store_true",
        help="let the fetch API fetch loopback and private addresses (for local work only)",
    )
    serve.add_argument(
        "--fetch-queue", type=int, default=32, metavar="N", help="fetch API requests waiting at most"
    )
    serve.add_argument(
        "--fetch-sessions",
        type=int,
        default=256,
        metavar="N",
        help="named sessions of the fetch API kept at most (session=NAME; default: 256)",
    )
    serve.add_argument(
        "--fetch-session-idle",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="a named session unused this long is dropped (default: 600)",
    )
    serve.add_argument(
        "--fetch-concurrency", type=int, default=8, metavar="N", help="fetch API requests run at once"
    )


def _token(args: argparse.Namespace) -> str | None:
    if args.token and args.token_file:
        raise ConfigError("give the token once: --token or --token-file")
    if args.token_file:
        try:
            token = args.token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {args.token_file}: {exc.strerror or exc}") from None
        if not token:
            raise ConfigError(f"{args.token_file} is empty")
        return str(token)
    return str(args.token) if args.token else None


def run_serve(args: argparse.Namespace, settings_for: SettingsFor) -> int:
    """Run ``serve``; return the exit code."""
    from ..serve import ServeConfig, is_loopback_host, run_server

    token = _token(args)
    if token is None and not is_loopback_host(args.host):
        raise ConfigError(
            f"refusing to serve on {args.host} without a token: anyone who can reach it could "
            "start crawls; pass --token or --token-file, or bind 127.0.0.1"
        )
    if args.fetch_queue < 1 or args.fetch_concurrency < 1:
        raise ConfigError("--fetch-queue and --fetch-concurrency must be at least 1")
    if args.fetch_sessions < 1:
        raise ConfigError("--fetch-sessions must be at least 1")
    if not 1 <= args.fetch_session_idle <= 7 * 24 * 3600:
        raise ConfigError("--fetch-session-idle must be within 1..604800 seconds (a week)")
    settings = settings_for({})
    config = ServeConfig(
        host=args.host,
        port=args.port,
        token=token,
        allow_private=args.allow_private,
        project=Path.cwd(),
        spiders_dir=Path(settings.spiders_dir),
        fetch_queue=args.fetch_queue,
        fetch_concurrency=args.fetch_concurrency,
        fetch_sessions=args.fetch_sessions,
        fetch_session_idle=args.fetch_session_idle,
    )
    return run_server(config)
