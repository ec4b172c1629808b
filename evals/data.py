"""Reading the benchmark files (formats in ../shared/README.md), with clear errors.

Every loader raises :class:`EvalInputError` (a ``RagError``) for a missing,
unreadable or malformed file, so the CLI prints one line instead of a traceback.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import RagError


class EvalInputError(RagError):
    """A benchmark input file is missing, unreadable or not in the expected format."""


@dataclass(frozen=True)
class Paragraph:
    pid: str
    title: str
    context: str


@dataclass(frozen=True)
class SquadQuestion:
    qid: str
    pid: str
    title: str
    question_it: str
    question_en: str
    answers_it: tuple[str, ...]
    answers_en: tuple[str, ...]

    def question(self, lang: str) -> str:
        return self.question_it if lang == "it" else self.question_en

    def answers(self, lang: str) -> tuple[str, ...]:
        return self.answers_it if lang == "it" else self.answers_en


@dataclass(frozen=True)
class ArticleQuestion:
    qid: str
    lang: str
    question: str
    expect_any: tuple[tuple[str, ...], ...] = ()
    gold: str | None = None
    unanswerable: bool = False
    # The article file (stem) it is about, in sets of one-article corpora (news_qa).
    article: str | None = None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSON objects, one a line; ``.gz`` files are decompressed."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"{path}: no such file.")
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise EvalInputError(f"{path}: cannot be read ({err}).") from err
    except UnicodeDecodeError as err:
        raise EvalInputError(f"{path}: is not UTF-8 text (byte {err.start}).") from err
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise EvalInputError(f"{path}, line {n}: not valid JSON ({err.msg}).") from err
        if not isinstance(row, dict):
            raise EvalInputError(f"{path}, line {n}: expected a JSON object.")
        rows.append(row)
    if not rows:
        raise EvalInputError(f"{path}: the file holds no questions or paragraphs.")
    return rows


def _need(row: dict[str, Any], keys: tuple[str, ...], path: Path, n: int) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise EvalInputError(f"{path}, record {n}: missing field(s) {', '.join(missing)}.")


def _answer_texts(items: Any, field: str, path: Path, n: int) -> tuple[str, ...]:
    # answers_it holds {"text", "answer_start"} objects, answers_en plain strings.
    if items is None:
        return ()
    bad = EvalInputError(
        f"{path}, record {n}: {field} must be a list of strings or of {{\"text\": …}} objects."
    )
    if not isinstance(items, list):  # a bare string would be scored letter by letter
        raise bad
    texts = []
    for a in items:
        text = a.get("text") if isinstance(a, dict) else a
        if not isinstance(text, str):
            raise bad
        texts.append(text)
    return tuple(texts)


def load_corpus(path: Path) -> list[Paragraph]:
    rows = read_jsonl(path)
    out = []
    for n, r in enumerate(rows, 1):
        _need(r, ("pid", "context"), path, n)
        out.append(Paragraph(str(r["pid"]), str(r.get("title", "")), str(r["context"])))
    if len({p.pid for p in out}) != len(out):
        raise EvalInputError(f"{path}: paragraph ids (pid) are not unique.")
    return out


def load_squad_questions(path: Path, corpus: list[Paragraph] | None = None) -> list[SquadQuestion]:
    rows = read_jsonl(path)
    out = []
    for n, r in enumerate(rows, 1):
        _need(r, ("pid", "question_it", "question_en"), path, n)
        out.append(
            SquadQuestion(
                qid=str(r.get("id", n)),
                pid=str(r["pid"]),
                title=str(r.get("title", "")),
                question_it=str(r["question_it"]),
                question_en=str(r["question_en"]),
                answers_it=_answer_texts(r.get("answers_it"), "answers_it", path, n),
                answers_en=_answer_texts(r.get("answers_en"), "answers_en", path, n),
            )
        )
    if corpus is not None:
        known = {p.pid for p in corpus}
        unknown = sorted({q.pid for q in out} - known)
        if unknown:
            raise EvalInputError(
                f"{path}: {len(unknown)} question(s) point at paragraphs not in the corpus (e.g. {unknown[0]})."
            )
    return out


def load_article_questions(path: Path) -> list[ArticleQuestion]:
    rows = read_jsonl(path)
    out = []
    for n, r in enumerate(rows, 1):
        _need(r, ("lang", "q"), path, n)
        if r["lang"] not in ("it", "en"):
            raise EvalInputError(f"{path}, record {n}: lang must be 'it' or 'en', not {r['lang']!r}.")
        unanswerable = bool(r.get("unanswerable", False))
        if not unanswerable:
            _need(r, ("expect_any", "gold"), path, n)
            groups = r["expect_any"]
            if not isinstance(groups, list) or not all(isinstance(g, list) and g for g in groups):
                raise EvalInputError(f"{path}, record {n}: expect_any must be a list of non-empty lists.")
        out.append(
            ArticleQuestion(
                qid=str(r.get("id", n)),
                lang=r["lang"],
                question=str(r["q"]),
                expect_any=tuple(tuple(str(a) for a in g) for g in r.get("expect_any", [])),
                gold=None if unanswerable else str(r["gold"]),
                unanswerable=unanswerable,
                article=str(r["article"]) if r.get("article") is not None else None,
            )
        )
    return out
