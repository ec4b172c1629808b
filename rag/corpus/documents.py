"""Reading articles: validation, metadata (title, date), sections, stable ids."""

from __future__ import annotations

import codecs
import hashlib
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import DocumentError
from ..text.language import detect_language
from ..types import Document

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown")
# A title is copied into every passage of its article (and into every prompt that
# cites it): a longer one is refused rather than multiplied (a 2.5 MB title × thousands of passages).
MAX_TITLE_CHARS = 300

# First line like "date 2024-06 Un accordo di mutua difesa".
_META_LINE = re.compile(r"^\s*date\s+(\d{4}(?:-\d{2}(?:-\d{2})?)?)\s+(.+?)\s*$", re.IGNORECASE)
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = ('.', '!', '?', ':', ';', ',', '"', '»', '”')


def _name(source: str) -> str:
    return Path(source).name or source


def document_id(text: str) -> str:
    """Stable id: a content hash, so the same text always gets the same id."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def decode_article(raw: bytes, source: str) -> str:
    """Bytes to text, refusing binary and non-UTF-8 input with a clear message."""
    if _is_utf16_text(raw):  # Windows Notepad's "Unicode"
        raise DocumentError(f"{source}: is saved as UTF-16; save it as UTF-8 and try again.", code="utf16",
                            name=_name(source))
    if b"\x00" in raw[:8192]:
        raise DocumentError(f"{source}: looks like a binary file, not a text article.", code="binary",
                            name=_name(source))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DocumentError(
            f"{source}: is not valid UTF-8 (byte {err.start}); save it as UTF-8 and try again.",
            code="not_utf8", name=_name(source),
        ) from err
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DocumentError(f"{source}: the file is empty.", code="empty", name=_name(source))
    return text


def _is_utf16_text(raw: bytes) -> bool:
    bom = raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    return bom and "\x00" not in raw[:8192].decode("utf-16", errors="ignore")


def body_of(text: str) -> str:
    """``text`` (an article or its first passage) without a leading "date YYYY-MM Title" line."""
    first, newline, rest = text.lstrip().partition("\n")
    return rest.lstrip() if newline and _META_LINE.match(first) else text


def is_metadata_line(text: str) -> bool:
    """Whether ``text`` is an article's "date YYYY-MM Title" line."""
    return "\n" not in text.strip() and bool(_META_LINE.match(text))


def parse_article(text: str, source: str, fallback_title: str, language: str | None = None) -> Document:
    """Build a Document: metadata line or Markdown title, language (detected unless
    given), id."""
    first_line, _, _ = text.partition("\n")
    title, date, body_start = fallback_title, None, 0
    meta = _META_LINE.match(first_line)
    md = _MD_HEADING.match(first_line)
    if meta:
        date, title = meta.group(1), meta.group(2)
        body_start = len(first_line) + 1
    elif md:
        title = md.group(2)
        body_start = len(first_line) + 1
    elif 0 < len(first_line.strip()) <= 120 and not first_line.rstrip().endswith(_SENTENCE_END):
        title = first_line.strip()
    if len(title) > MAX_TITLE_CHARS:
        raise DocumentError(
            f"{source}: the title is {len(title):,} characters long; the limit is {MAX_TITLE_CHARS}. "
            "Shorten the first line (the title) and try again.",
            code="title_too_long", name=_name(source), chars=len(title), limit=MAX_TITLE_CHARS,
        )
    body = text[body_start:]
    if not body.strip():  # a title line alone would be "added" with nothing to find in it
        raise DocumentError(f"{source}: has a title line but no text after it.", code="title_only",
                            name=_name(source))
    return Document(
        doc_id=document_id(text),
        title=title,
        date=date,
        source=source,
        language=language or detect_language(body),
        text=text,
        body_start=min(body_start, len(text)),
    )


def read_article(path: Path, max_bytes: int, known_languages: Mapping[str, str] | None = None) -> Document:
    """Read and parse one article file, with a clear error for every bad input.

    ``known_languages`` (document id -> language) spares detecting the language of
    articles read before: detection is most of the time it takes to open a store.
    """
    try:
        exists, is_file = path.exists(), path.is_file()
    except OSError as err:  # e.g. a file name too long for the file system
        raise DocumentError(f"{path}: cannot be opened ({err.strerror or err}).", code="unreadable",
                            name=path.name) from err
    if not exists:
        raise DocumentError(f"{path}: no such file or folder.")
    if not is_file:
        raise DocumentError(f"{path}: not a regular file.")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise DocumentError(
            f"{path}: unsupported file type {path.suffix or '(none)'}; "
            f"use plain text or Markdown ({', '.join(SUPPORTED_SUFFIXES)}).",
            code="unsupported_type", name=path.name, suffix=path.suffix or "-",
        )
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DocumentError(f"{path}: {size:,} bytes is over the {max_bytes:,}-byte limit.", code="too_big",
                                name=path.name, kb=size // 1024, limit_kb=max_bytes // 1024)
        raw = path.read_bytes()
    except PermissionError as err:
        raise DocumentError(f"{path}: cannot be read (permission denied).", code="unreadable",
                            name=path.name) from err
    except OSError as err:
        raise DocumentError(f"{path}: cannot be read ({err.strerror or err}).", code="unreadable",
                            name=path.name) from err
    text = decode_article(raw, str(path))
    doc_id = document_id(text)
    language = (known_languages or {}).get(doc_id)
    return parse_article(text, str(path), filename_title(path, doc_id), language)


class DocumentCache:
    """Articles read before, by path, valid while the file's size, times and inode are
    unchanged: opening the store again reads only the files that changed. With 10,000
    articles, every ingest and sync otherwise re-read and re-hashed them all (most of
    the time it took to add one article). Holds the articles' text (the store's size in
    memory). Owned by the ``Assistant``; thread-safe."""

    # A file changed less than this long before it was read is read again next time: a
    # rewrite of the same size within the file system's time grain would look unchanged.
    RECENT_NS = 2 * 10**9

    def __init__(self) -> None:
        # path -> (size, mtime, ctime, inode), the article, whether its language was detected
        self._seen: dict[Path, tuple[tuple[int, int, int, int], Document, bool]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def read(self, path: Path, max_bytes: int, known_languages: Mapping[str, str] | None = None) -> Document:
        """``read_article(path, …)``, from memory when the file is unchanged since last read."""
        try:
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        except OSError:
            return read_article(path, max_bytes, known_languages)  # its clear error
        known = known_languages or {}
        with self._lock:
            hit = self._seen.get(path)
        if hit is not None and hit[0] == key and st.st_size <= max_bytes:
            doc, detected = hit[1], hit[2]
            language = known.get(doc.doc_id)
            if language:
                return replace(doc, language=language) if language != doc.language else doc
            if detected:  # as a new read would detect it again
                return doc
        doc = read_article(path, max_bytes, known_languages)
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) >= self.RECENT_NS:
            with self._lock:
                self._seen[path] = (key, doc, doc.doc_id not in known)
        return doc

    def keep_only(self, paths: Iterable[Path]) -> None:
        """Forget files no longer in the store."""
        wanted = set(paths)
        with self._lock:
            self._seen = {p: v for p, v in self._seen.items() if p in wanted}


def filename_title(path: Path, doc_id: str) -> str:
    """The title of an article without one: its file name, less the "-<id>" the
    store adds (so the title stays the same once the article is in the store)."""
    return " ".join(path.stem.removesuffix(f"-{doc_id[:8]}").replace("_", " ").split()) or path.stem


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, plus supported files found in named folders."""
    files: list[Path] = []
    for p in paths:
        try:
            is_dir = p.is_dir()
        except OSError as err:  # e.g. a file name too long for the file system
            raise DocumentError(f"{p}: cannot be opened ({err.strerror or err}).") from err
        if is_dir:
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES)
            if not found:
                raise DocumentError(f"{p}: the folder holds no .txt or .md articles.")
            files.extend(found)
        else:
            files.append(p)
    return files


@dataclass(frozen=True)
class Section:
    """A run of body text under one heading (None before the first heading)."""

    heading: str | None
    start: int
    end: int


def _is_plain_heading(line: str, prev_blank: bool, next_blank: bool) -> bool:
    s = line.strip()
    return (
        prev_blank
        and next_blank
        and 0 < len(s) <= 100
        and len(s.split()) <= 14
        and not s.endswith(_SENTENCE_END)
    )


def split_sections(doc: Document) -> list[Section]:
    """Cut the body at sub-headings (Markdown ``#`` or short stand-alone lines).

    A heading needs text under it: one followed only by another heading or by
    nothing (a list of short lines, a closing "Fonte: ANSA") stays body text,
    since a heading's words are indexed only with the passages under it.
    """
    lines = doc.text[doc.body_start :].split("\n")
    headings = [_heading_text(lines, i) for i in range(len(lines))]
    next_is_heading: bool | None = None  # of the next non-blank line; None: no line follows
    keep = [False] * len(lines)
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip():
            keep[i] = headings[i] is not None and next_is_heading is False
            next_is_heading = headings[i] is not None
    sections: list[Section] = []
    heading: str | None = None
    pos = doc.body_start
    section_start = pos
    for line, text, is_heading in zip(lines, headings, keep, strict=True):
        if is_heading:
            if doc.text[section_start:pos].strip():
                sections.append(Section(heading, section_start, pos))
            heading = text
            section_start = pos + len(line) + 1
        pos += len(line) + 1
    end = len(doc.text)
    if doc.text[section_start:end].strip():
        sections.append(Section(heading, min(section_start, end), end))
    return sections


def _heading_text(lines: list[str], i: int) -> str | None:
    """The heading line ``i`` looks like (Markdown or a short stand-alone line), else None."""
    md = _MD_HEADING.match(lines[i])
    if md:
        return md.group(2)
    prev_blank = i == 0 or not lines[i - 1].strip()
    next_blank = i + 1 >= len(lines) or not lines[i + 1].strip()
    return lines[i].strip() if _is_plain_heading(lines[i], prev_blank, next_blank) else None


def store_files(docs_dir: Path) -> list[Path]:
    """Every article file in the store, in a stable order (read each with ``read_article``:
    one unreadable file must not stop the others being read)."""
    if not docs_dir.exists():
        return []
    return [p for p in sorted(docs_dir.rglob("*")) if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES]
