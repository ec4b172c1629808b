"""Adding articles to ``docs_store/``: validate, deduplicate by content, copy."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..errors import DocumentError
from ..types import Document
from .documents import expand_paths, filename_title, parse_article, read_article, store_files

# A progress bar for reading articles from this many files on.
PROGRESS_FROM = 50


@dataclass
class IngestReport:
    added: list[Document] = field(default_factory=list)
    # Already in the store (the same text, under any name).
    unchanged: list[Document] = field(default_factory=list)
    # The same text as another file of this ingest: taken once.
    duplicates: list[Document] = field(default_factory=list)
    # Each with its English message (str) and, for the page's own wording, its code.
    errors: list[DocumentError] = field(default_factory=list)
    # Passages embedded into the index for this ingest (set by the assistant).
    embedded: int = 0


def _file_stem(name: str) -> str:
    """The original file name, minus characters some file systems refuse: it is the
    title of articles without one (``documents.filename_title``)."""
    safe = re.sub(r'[\x00-\x1f\\/:*?"<>|]+', "_", name).strip(" ._")
    # File names are limited to 255 bytes; leave room for the id suffix.
    return safe.encode("utf-8")[:200].decode("utf-8", "ignore") or "article"


def store_document(doc: Document, docs_dir: Path, suffix: str) -> Path:
    """Write the article text into the store atomically; returns its path."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    stem, tag = _file_stem(Path(doc.source).stem), doc.doc_id[:8]
    target, n = docs_dir / f"{stem}-{tag}{suffix}", 2
    while target.exists():  # the user edited the stored copy since: it keeps their text
        target, n = docs_dir / f"{stem}-{n}-{tag}{suffix}", n + 1
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(doc.text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return target


def remove_documents(doc_ids: set[str], docs_dir: Path, max_bytes: int) -> list[Document]:
    """Delete the store's files of these articles (every copy); returns the articles removed."""
    removed: dict[str, Document] = {}
    for path in store_files(docs_dir):
        try:
            doc = read_article(path, max_bytes)
        except DocumentError:
            continue
        if doc.doc_id in doc_ids:
            try:
                path.unlink()
            except OSError as err:  # a read-only store: what was removed so far stays removed
                raise DocumentError(f"{path.name}: cannot be removed from {docs_dir} ({err.strerror or err}).") from err
            removed.setdefault(doc.doc_id, doc)
    return list(removed.values())


def ingest_paths(
    paths: list[Path],
    docs_dir: Path,
    known_ids: set[str],
    max_bytes: int,
    vet: Callable[[Document], None] = lambda doc: None,
    progress: bool = False,
) -> IngestReport:
    """Copy every valid new article into the store; bad files are reported, not fatal.
    ``vet`` raises DocumentError for an article the store must not take (checked before it is copied)."""
    report = IngestReport()
    files: list[Path] = []
    for path in paths:
        try:
            files.extend(expand_paths([path]))
        except DocumentError as err:
            report.errors.append(err)
    taken: set[str] = set()
    bar = tqdm(files, unit="file", desc="Reading articles", disable=not progress or len(files) <= PROGRESS_FROM)
    for path in bar:
        try:
            doc = read_article(path, max_bytes)
        except DocumentError as err:
            report.errors.append(err)
            continue
        if doc.doc_id in known_ids:
            report.unchanged.append(doc)
            continue
        if doc.doc_id in taken:
            report.duplicates.append(doc)
            continue
        try:
            vet(doc)
        except DocumentError as err:
            report.errors.append(err)
            continue
        try:
            stored = store_document(doc, docs_dir, path.suffix.lower())
        except OSError as err:  # store not writable, disk full: nothing half-written stays
            report.errors.append(DocumentError(
                f"{path}: could not be copied into {docs_dir} ({err.strerror or err}).",
                code="cannot_store", name=path.name,
            ))
            continue
        taken.add(doc.doc_id)
        # As the store will read it back (a title from the file name loses what file names cannot hold).
        report.added.append(parse_article(doc.text, str(stored), filename_title(stored, doc.doc_id), doc.language))
    return report
