"""``rag ui``: registered with the ``rag`` command through the ``rag.commands`` entry point."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rag import ANSWER_ENGINES


def cmd_ui(args: argparse.Namespace) -> int:
    from rag.cli import assistant_for

    # Before Gradio and torch load: the folders they write at import go into the page's own
    # temporary folder, which is deleted when the page stops (inside the user's, if set).
    temp = Path(tempfile.mkdtemp(prefix="rag-ui-", dir=os.environ.get("GRADIO_TEMP_DIR")))
    os.environ["GRADIO_TEMP_DIR"] = str(temp)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(temp / "torchinductor"))
    try:
        assistant = assistant_for(args)  # sets the rest of the process environment
        from .app import launch

        launch(assistant, host=args.host, port=args.port, temp_dir=temp)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return 0


def add_parser(subparsers: Any) -> None:
    u = subparsers.add_parser("ui", help="start the chat page")
    u.add_argument("--host", default=None, help="address to listen on (default ui.host, 127.0.0.1)")
    u.add_argument("--port", type=int, default=None, help="port (default ui.port, 7860)")
    u.add_argument("--backend", choices=ANSWER_ENGINES, help="answer engine (default llm.backend)")
    u.set_defaults(func=cmd_ui)
