"""The ``rag`` command: cited answers about news articles, offline (mirrors the Python API).

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

from .corpus.documents import body_of
from .errors import RagError
from .llm.names import ANSWER_ENGINES
from .search.embedding_models import EMBEDDING_MODELS

if TYPE_CHECKING:
    from .assistant import Assistant
    from .types import Answer, Stage

DESCRIPTION = """\
Cited answers about news articles, offline: ask in Italian or English, get an
answer in the question's language with the exact passages it comes from, or a
clear "the articles do not say". The same as the chat page and the Python API."""

EXAMPLES = """\
examples:
  rag ask "Chi ha firmato l'accordo di mutua difesa?"
  rag chat                          # a conversation, with follow-up questions
  rag ingest articles/              # add every .txt/.md article of a folder
  rag search "mutual defence pact" --k 3
  rag ui                            # the chat page, http://127.0.0.1:7860

`rag COMMAND --help` describes each command. Settings: rag.toml or RAG_* variables
(`rag config` prints them)."""

ASK_EXAMPLES = """\
examples:
  rag ask "Chi ha firmato l'accordo di mutua difesa?"
  rag ask "Who signed the pact?" --backend extractive     # quotes only, no model
  rag ask "Who signed the pact?" --json > answer.json     # progress stays on stderr
  printf 'Who signed it?\nWhen?\n' | rag ask             # one question a line

Progress (loading, searching, reading N passages, writing, checking) goes to stderr,
the answer to stdout. --json prints the Python API's Answer.to_dict(): text, language,
answerable, citations [{number, doc_id, title, date, quote, start, end, passage, ...}],
passages, backend, fell_back, fallback_reason, refusal_reason, relevance, searched_for,
translated_query, read_whole_corpus, note, stopped, timings (seconds). See docs/cli.md."""

CHAT_EXAMPLES = """\
In the conversation: type a question and press Enter; follow-ups ("e lui cosa ha
detto?") are understood from the conversation. Ctrl-C stops an answer being written;
/new starts a new conversation; /quit or Ctrl-D ends."""

SEARCH_EXAMPLES = """\
examples:
  rag search "accordo di mutua difesa"
  rag search "Who signed the pact?" --k 3 --json"""

# How each pipeline stage (rag.STAGES) is shown on stderr.
STAGE_TEXT = {
    "loading": "loading the index and the model",
    "rewriting": "reading the conversation",
    "searching": "searching the articles",
    "translating": "translating the question to search in the articles' language",
    "reading": "reading {passages}",
    "writing": "writing the answer",
    "checking": "checking the citations",
}

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
        print(f"[{h.rank}] {where}{heading}")
        print(f"    score {h.score:.4f} · cosine {cosine} · chars {h.span[0]}-{h.span[1]} · id {h.doc_id}")
        print(textwrap.indent(textwrap.fill(body_of(h.text), 100), "    "))
    return 0


def _print_answer(answer: Answer) -> None:
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


def stage_line(stage: Stage) -> str:
    """``… searching the articles (0.4s)``."""
    passages = f"{stage.passages} passage{'' if stage.passages == 1 else 's'}"
    return f"… {STAGE_TEXT.get(stage.name, stage.name).format(passages=passages)} ({stage.elapsed:.1f}s)"


class Progress:
    """The stages of an answer on stderr: in a terminal one line, rewritten at each stage
    and cleared when the answer starts; otherwise (a log, a pipe) one line each."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.live = enabled and sys.stderr.isatty()
        self.shown = False

    def stage(self, stage: Stage, drafting: bool) -> None:
        if not self.enabled:
            return
        if not self.live:
            print(stage_line(stage), file=sys.stderr, flush=True)
        elif not drafting:  # while the draft streams on the same screen, it is the progress
            print(f"\r\033[K{stage_line(stage)}", end="", file=sys.stderr, flush=True)
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
            self.shown = False


def answer_with_progress(
    assistant: Assistant, question: str, progress: Progress, *, stream: bool, **options: Any
) -> Answer:
    """Asks ``question``, showing the stages (stderr) and, when ``stream``, the draft on a
    terminal (replaced by the validated answer, which is returned, not printed)."""
    from .types import Answer, Stage

    answer: Answer | None = None
    draft = ""
    live = stream and sys.stdout.isatty()
    try:
        for item in assistant.ask_stream(question, **options):
            if isinstance(item, Stage):
                progress.stage(item, drafting=bool(draft))
            elif isinstance(item, Answer):
                answer = item
            elif live:
                if not draft:
                    progress.clear()
                print(item, end="", flush=True)
                draft += item
    finally:
        progress.clear()
        if draft:  # the final, validated text replaces the draft
            print(erase_sequence(draft, shutil.get_terminal_size().columns), end="", flush=True)
    assert answer is not None
    return answer


def cmd_ask(args: argparse.Namespace) -> int:
    assistant = assistant_for(args)
    options = {"k": args.k} if args.k is not None else {}
    progress = Progress(not args.quiet)

    def one(question: str) -> int:
        answer = answer_with_progress(assistant, question, progress, stream=not args.json, **options)
        if args.json:
            _print_json(answer.to_dict())
        else:
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


def cmd_chat(args: argparse.Namespace) -> int:
    """A conversation in the terminal: follow-ups see the earlier questions and answers."""
    assistant = assistant_for(args)
    options = {"k": args.k} if args.k is not None else {}
    progress = Progress(not args.quiet)
    history: list[tuple[str, str]] = []
    interactive = sys.stdin.isatty()
    if interactive:
        print("Ask about the articles (Italian or English). /new: new conversation · /quit or Ctrl-D: end · "
              "Ctrl-C: stop an answer.", file=sys.stderr)
    while True:
        try:
            line = input("› " if interactive else "")
        except EOFError:
            return 0
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0
        question = line.strip()
        if not question:
            continue
        if question in ("/quit", "/exit"):
            return 0
        if question == "/new":
            history.clear()
            print("(new conversation)", file=sys.stderr)
            continue
        try:
            answer = answer_with_progress(assistant, question, progress, stream=True, history=history, **options)
        except KeyboardInterrupt:  # the model's stream is closed on the way out: it is free again
            print("(stopped)", file=sys.stderr)
            continue
        except RagError as err:
            print(f"error: {err}", file=sys.stderr)
            continue
        _print_answer(answer)
        if answer.answerable:
            history.append((question, answer.text))
        print(flush=True)


# Up to this many articles, each added or skipped one gets its own line; beyond, a summary.
LISTED_ARTICLES = 20


def cmd_ingest(args: argparse.Namespace) -> int:
    report = assistant_for(args).ingest(args.paths, progress=not args.quiet)
    if len(report.added) + len(report.unchanged) + len(report.duplicates) <= LISTED_ARTICLES:
        for d in report.added:
            print(f"added     {d.title!r} ({d.date or 'no date'}, {d.language}) id {d.doc_id}")
        for d in report.unchanged:
            print(f"unchanged {d.title!r} id {d.doc_id} (already in the store)")
        for d in report.duplicates:
            print(f"duplicate {d.title!r} id {d.doc_id} (the same text as another file here: taken once)")
    for e in report.errors:
        print(f"error: {e}", file=sys.stderr)
    print(
        f"{len(report.added):,} added ({report.embedded:,} passages embedded), {len(report.unchanged):,} already in "
        f"the store, {len(report.duplicates):,} duplicates skipped, {len(report.errors):,} refused",
        file=sys.stderr,
    )
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
    raw = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="rag", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=raw)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "search", help="the passages that best match a query (no model writes anything)",
        description="The passages that best match a query, best first, with their article's title and date.",
        epilog=SEARCH_EXAMPLES, formatter_class=raw,
    )
    s.add_argument("query", help="words or a question, in Italian or English")
    s.add_argument("--k", type=int, default=None, help="how many passages (default retrieval.k)")
    s.add_argument("--json", action="store_true", help="print SearchHit.to_dict() of each passage as JSON")
    s.set_defaults(func=cmd_search)

    def answer_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--k", type=int, default=None, help="passages to retrieve (default retrieval.k)")
        parser.add_argument(
            "--backend", choices=ANSWER_ENGINES,
            help="answer engine: llamacpp (the embedded model, default), openai (an OpenAI-compatible "
                 "server, llm.base_url) or extractive (quotes the passages, no model)",
        )
        parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    a = sub.add_parser(
        "ask", help="a cited answer to one question (no question: one per line from stdin)",
        description="A cited answer in the question's language, or a clear refusal when the articles "
                    "do not hold the answer.",
        epilog=ASK_EXAMPLES, formatter_class=raw,
    )
    a.add_argument("question", nargs="?", help="the question (omit it to read one question per line from stdin)")
    answer_options(a)
    a.add_argument("--json", action="store_true", help="print the Answer as JSON (fields: see below)")
    a.set_defaults(func=cmd_ask)

    ch = sub.add_parser(
        "chat", help="a conversation in the terminal, with follow-up questions",
        description="Ask questions one after another; follow-ups are read with the conversation.",
        epilog=CHAT_EXAMPLES, formatter_class=raw,
    )
    answer_options(ch)
    ch.set_defaults(func=cmd_chat)

    i = sub.add_parser(
        "ingest", help="add .txt/.md articles (files or folders) and index them",
        description="Add articles to the store and the index. A first line `date YYYY-MM Title` gives "
                    "the date and title; files already in the store are skipped.",
        epilog="examples:\n  rag ingest article.txt\n  rag ingest archive/   # every .txt/.md inside\n\n"
               "Thousands of files: progress bars show files, passages, passages/s and the time left; the\n"
               "index is saved as it goes (index.checkpoint_s), so an interrupted run, started again,\n"
               "goes on where it stopped. Files with the same text are taken once.",
        formatter_class=raw,
    )
    i.add_argument("paths", nargs="+", type=Path, help="article files or folders of them")
    i.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    i.set_defaults(func=cmd_ingest)

    d = sub.add_parser("documents", help="list the articles (id, date, language, passages, title)")
    d.add_argument("--json", action="store_true", help="print them as JSON")
    d.set_defaults(func=cmd_documents)

    r = sub.add_parser("remove", help="remove articles from the store and the index, by id (or id prefix)")
    r.add_argument("ids", nargs="+", help="article ids, as `rag documents` lists them")
    r.set_defaults(func=cmd_remove)

    x = sub.add_parser("index", help="load, update or rebuild the index")
    x.add_argument("--rebuild", action="store_true", help="embed every passage again (e.g. after a damage)")
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
