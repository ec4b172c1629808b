"""``rag ui``: registered with the ``rag`` command through the ``rag.commands`` entry point."""

from __future__ import annotations

import argparse
from typing import Any

from rag import ANSWER_ENGINES


def cmd_ui(args: argparse.Namespace) -> int:
    from rag.cli import assistant_for

    assistant = assistant_for(args)  # sets the process environment before Gradio loads
    from .app import launch

    launch(assistant, host=args.host, port=args.port)
    return 0


def add_parser(subparsers: Any) -> None:
    u = subparsers.add_parser("ui", help="start the chat page")
    u.add_argument("--host", default=None, help="address to listen on (default ui.host, 127.0.0.1)")
    u.add_argument("--port", type=int, default=None, help="port (default ui.port, 7860)")
    u.add_argument("--backend", choices=ANSWER_ENGINES, help="answer engine (default llm.backend)")
    u.set_defaults(func=cmd_ui)
