"""rag: cited answers about news articles, offline (mirrors the Python API).

Commands from other packages of this project (``ui``: the chat page; ``eval``:
quality measurements) plug in through the ``rag.commands`` entry points.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RagError
from .llm.names import ANSWER_ENGINES
from .search.embedding_models import EMBEDDING_MODELS

if TYPE_CHECKING:
    from .assistant import Assistant

# Where other packages add subcommands: ``name = "module:function"``, the function
# taking argparse's subparsers and registering its parser there.
COMMANDS_GROUP = "rag.commands"


def assistant_for(args: argparse.Namespace) -> Assistant:
    """The assistant for a command, with its ``--backend`` if it has one."""
    from .assistant import Assistant
    from .config import load_settings

    settings = load_settings()
    if getattr(args, "backend", None):
        settings.llm.backend = args.backend
    return Assistant(settings)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def cmd_search(args: argparse.Namespace) -> int:
    assistant = assistant_for(args)
    hits = assistant.search(args.query, k=args.k)
    if args.json:
        _print_json([h.to_dict() for h in hits])
        return 0
    if not len(assistant.retriever):
        print("No passages indexed. Add articles with `rag ingest PATH`.")
    elif not hits:  # BM25 alone finds nothing for a query with no word in common
        print("No passage matches the query.")
    for h in hits:
        where = f"{h.title}" + (f" ({h.date})" if h.date else "")
        heading = f" › {h.chunk.heading}" if h.chunk.heading else ""
        cosine = f"{h.dense_score:.3f}" if h.dense_score is not None else "-"
        print(f"[{h.rank}] score {h.score:.4f}  cosine {cosine}  {where}{heading}  chars {h.span[0]}-{h.span[1]}")
        print(textwrap.indent(textwrap.fill(h.text, 100), "    "))
    return 0


def _print_answer(answer: Any) -> None:
    print(answer.text)
    if answer.note:
        print(f"\n({answer.note})")
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            where = c.title + (f", {c.date}" if c.date else "")
            print(f"  [{c.number}] {where} (chars {c.start}-{c.end})")
            print(textwrap.indent(textwrap.fill(f"«{c.quote}»", 96), "      "))
    also = f"; also searched for «{answer.translated_query}»" if answer.translated_query else ""
    print(f"\n[{answer.backend}{', fell back: ' + answer.fallback_reason if answer.fell_back else ''}"
          f"{also}; {answer.timings.get('total', 0):.1f}s]", file=sys.stderr)


def erase_sequence(printed: str, columns: int) -> str:
    """Terminal codes that move the cursor back to where ``printed`` began and clear the
    rest of the screen: a draft that wrapped, or held a newline, spans several rows."""
    columns = max(columns, 1)
    rows = sum(max(1, math.ceil(len(line) / columns)) for line in printed.split("\n"))
    return "\r" + (f"\033[{rows - 1}A" if rows > 1 else "") + "\033[J"


def cmd_ask(args: argparse.Namespace) -> int:
    assistant = assistant_for(args)
    options = {"k": args.k} if args.k is not None else {}

    def one(question: str) -> int:
        if args.json:
            _print_json(assistant.ask(question, **options).to_dict())
            return 0
        answer = None
        streamed, draft = False, ""
        for item in assistant.ask_stream(question, **options):
            if isinstance(item, str):
                if sys.stdout.isatty():
                    print(item, end="", flush=True)
                    streamed, draft = True, draft + item
            else:
                answer = item
        if streamed:  # the final, validated text replaces the draft
            print(erase_sequence(draft, shutil.get_terminal_size().columns), end="")
        _print_answer(answer)
        return 0

    if args.question is not None:
        return one(args.question)
    status = 0
    for line in sys.stdin:  # one question per line; the models load once
        if not line.strip():
            continue
        try:
            one(line.strip())
        except RagError as err:
            print(f"error: {err}", file=sys.stderr)
            status = 2
        print("---" if not args.json else "", flush=True)
    return status


def cmd_ingest(args: argparse.Namespace) -> int:
    report = assistant_for(args).ingest(args.paths)
    for d in report.added:
        print(f"added     {d.title!r} ({d.date or 'no date'}, {d.language}) id {d.doc_id}")
    for d in report.unchanged:
        print(f"unchanged {d.title!r} id {d.doc_id} (already in the store)")
    for e in report.errors:
        print(f"error: {e}", file=sys.stderr)
    return 2 if report.errors else 0


def cmd_documents(args: argparse.Namespace) -> int:
    docs = assistant_for(args).documents()
    if args.json:
        _print_json(docs)
        return 0
    if not docs:
        print("No articles in the store. Add some with `rag ingest PATH`.")
    for d in docs:
        print(f"{d['doc_id']}  {d['date'] or 'no date':<10} {d['language']}  {d['passages']:>5} passages  {d['title']}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    for d in assistant_for(args).remove(args.ids):
        print(f"removed   {d.title!r} id {d.doc_id}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    r = assistant_for(args).index(rebuild=args.rebuild)
    why = f" ({r.reason})" if r.reason else ""
    print(f"index {r.action}{why}: {r.documents} documents, {r.chunks} chunks, {r.embedded_chunks} embedded now")
    for s in r.skipped:
        print(f"skipped: {s}", file=sys.stderr)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from .config import load_settings

    _print_json(load_settings().public_dict())
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    import time

    from .assistant import Assistant
    from .config import load_settings
    from .provision.setup import prepare, step

    settings = load_settings()
    also = EMBEDDING_MODELS[args.embedding] if args.embedding else None
    if prepare(settings, with_llm=not args.no_llm, also=also) and also is not None:
        print(
            f"  {also.name} is ready. To search with it, set `[embedding] model = \"{also.name}\"` in rag.toml "
            f"(or RAG_EMBEDDING__MODEL={also.name}); the index is then rebuilt once with it.",
            file=sys.stderr,
        )
    t = step("index")
    report = Assistant(settings).index()
    print(
        f"  index {report.action}: {report.documents} documents, {report.chunks} passages "
        f"({time.perf_counter() - t:.1f}s)",
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="top passages for a query")
    s.add_argument("query")
    s.add_argument("--k", type=int, default=None, help="number of passages")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)

    a = sub.add_parser("ask", help="a cited answer (no question: read one per line from stdin)")
    a.add_argument("question", nargs="?")
    a.add_argument("--k", type=int, default=None)
    a.add_argument("--backend", choices=ANSWER_ENGINES)
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_ask)

    i = sub.add_parser("ingest", help="add .txt/.md articles (files or folders)")
    i.add_argument("paths", nargs="+", type=Path)
    i.set_defaults(func=cmd_ingest)

    d = sub.add_parser("documents", help="list the articles (id, date, language, passages, title)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_documents)

    r = sub.add_parser("remove", help="remove articles from the store and the index, by id (or id prefix)")
    r.add_argument("ids", nargs="+", help="article ids, as `rag documents` lists them")
    r.set_defaults(func=cmd_remove)

    x = sub.add_parser("index", help="load, update or rebuild the index")
    x.add_argument("--rebuild", action="store_true")
    x.set_defaults(func=cmd_index)

    c = sub.add_parser("config", help="print the effective settings")
    c.set_defaults(func=cmd_config)

    st = sub.add_parser("setup", help="prepare models and the index (run by the README commands)")
    st.add_argument("--no-llm", action="store_true", help="skip the embedded chat model")
    st.add_argument(
        "--embedding", choices=sorted(EMBEDDING_MODELS), default=None,
        help="also prepare this embedding model (embeddinggemma: a 1.1 GB download under the Gemma terms)",
    )
    st.set_defaults(func=cmd_setup)

    for command in entry_points(group=COMMANDS_GROUP):
        try:
            command.load()(sub)
        except ImportError as err:  # that package's extra is not installed: say so when it is asked for
            _unavailable(sub, command.name, err)
    return p


def _unavailable(sub: Any, name: str, err: ImportError) -> None:
    def fail(args: argparse.Namespace) -> int:
        raise RagError(f"`rag {name}` cannot start: {err}. Install the project's extras (the README set-up).")

    u = sub.add_parser(name, help=f"(unavailable: {err})", add_help=False)
    u.add_argument("rest", nargs=argparse.REMAINDER)
    u.set_defaults(func=fail)


def run(argv: Sequence[str] | None, handler: Callable[[argparse.Namespace], int] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return (handler or args.func)(args)
    except RagError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
