from pathlib import Path

import pytest

from rag.corpus.documents import (
    DocumentCache,
    decode_article,
    document_id,
    parse_article,
    read_article,
    split_sections,
)
from rag.errors import DocumentError
from tests.conftest import SEED


def test_seed_metadata_and_sections() -> None:
    doc = read_article(SEED, 10**6)
    assert doc.title == "Un accordo di mutua difesa"
    assert doc.date == "2024-06"
    assert doc.language == "it"
    assert "date 2024-06" not in doc.text[doc.body_start :]
    headings = [s.heading for s in split_sections(doc)]
    assert headings == [None, "Il ruolo degli USA e le parole di Kim"]


def test_id_is_a_stable_content_hash() -> None:
    assert document_id("abc") == document_id("abc") != document_id("abd")


def test_markdown_title_and_heading() -> None:
    text = "# Titolo\n\nPrimo paragrafo. Altro.\n\n## Sezione due\n\nSecondo paragrafo."
    doc = parse_article(text, "x.md", "x")
    assert doc.title == "Titolo" and doc.date is None
    assert [s.heading for s in split_sections(doc)] == [None, "Sezione due"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01\x02binary", "binary"),
        ("caffè".encode("latin-1"), "UTF-8"),
        (b"   \n\n ", "empty"),
        (b"# Vertice a Pyongyang\n\n", "no text after it"),
        (b"date 2024-06 Vertice a Pyongyang\n", "no text after it"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(DocumentError, match=message):
        read_article(p, 10**6)


def test_missing_wrong_type_too_big_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DocumentError, match="no such file"):
        read_article(tmp_path / "nope.txt", 10**6)
    pdf = tmp_path / "a.pdf"
    pdf.write_text("x")
    with pytest.raises(DocumentError, match="unsupported file type"):
        read_article(pdf, 10**6)
    big = tmp_path / "big.txt"
    big.write_text("parola " * 100)
    with pytest.raises(DocumentError, match="limit"):
        read_article(big, 100)
    locked = tmp_path / "locked.txt"
    locked.write_text("testo")

    def denied(self: Path) -> bytes:  # chmod 0 does not stop root, who runs CI
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(DocumentError, match="permission denied"):
        read_article(locked, 10**6)


def test_crlf_and_bom_are_normalised() -> None:
    assert decode_article("\ufeffa\r\nb".encode(), "x") == "a\nb"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        # A closing source line, blank lines around it: once a heading with nothing under it.
        ("date 2024-06 Titolo\nPrimo paragrafo del pezzo, con testo.\n\nFonte: ANSA\n", ["Fonte: ANSA"]),
        # A body of short lines: every one was taken for a heading, leaving no passage at all.
        ("date 2024-06 Ricetta\nIngredienti\n\nfarina 00\n\nuova fresche\n\nlatte intero\n",
         ["Ingredienti", "farina 00", "uova fresche", "latte intero"]),
        ("# Titolo\n\n## Sezione\n", ["Sezione"]),
    ],
)
def test_a_heading_with_no_text_under_it_stays_text(text: str, kept: list[str]) -> None:
    from rag.config import ChunkingSettings
    from rag.corpus.chunking import chunk_document

    chunks = chunk_document(parse_article(text, "x.md", "x"), ChunkingSettings())
    assert chunks, "the article was added with no passage"
    for line in kept:
        assert any(line in c.text for c in chunks), line


def test_a_heading_followed_by_another_heading_keeps_the_second() -> None:
    text = "date 2024-06 Titolo\nIntro del pezzo, con testo.\n\nSezione\n\nSottosezione\n\nIl testo della sottosezione."
    sections = split_sections(parse_article(text, "x.txt", "x"))
    assert [s.heading for s in sections] == [None, "Sottosezione"]
    assert "\n\nSezione\n" in text[sections[0].start : sections[0].end]


def test_utf16_file_gets_its_own_message(tmp_path: Path) -> None:
    p = tmp_path / "notepad.txt"
    p.write_bytes("Vertice a Pyongyang.\nTesto.".encode("utf-16"))
    with pytest.raises(DocumentError, match="UTF-16; save it as UTF-8"):
        read_article(p, 10**6)


def test_document_cache_reads_a_file_again_only_when_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import rag.corpus.documents as documents

    path = tmp_path / "a.txt"
    path.write_text("Primo articolo di prova, abbastanza lungo.", encoding="utf-8")
    reads: list[Path] = []
    real = documents.read_article

    def counting(p: Path, *args: object) -> object:
        reads.append(p)
        return real(p, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(documents, "read_article", counting)
    cache = DocumentCache()
    # Just written: not kept (a same-size rewrite within the clock's grain would look unchanged).
    cache.read(path, 10_000)
    cache.read(path, 10_000)
    assert len(reads) == 2 and len(cache) == 0
    monkeypatch.setattr(DocumentCache, "RECENT_NS", 0)
    first = cache.read(path, 10_000)
    assert cache.read(path, 10_000) is first and len(reads) == 3
    # The index's recorded language wins over the one detected at the first read.
    assert cache.read(path, 10_000, {first.doc_id: "en"}).language == "en" and len(reads) == 3
    # Rewritten with the same size: another time, so read again.
    path.write_text("Primo articolo di prova, abbastanza LUNGO.", encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 10**10))  # another time, whatever the grain
    second = cache.read(path, 10_000)
    assert second.doc_id != first.doc_id and second.text.endswith("LUNGO.") and len(reads) == 4
    assert cache.read(path, 10_000) is second and len(reads) == 4
    # A language known at the first read but no longer known is detected again, as uncached.
    other = DocumentCache()
    assert other.read(path, 10_000, {second.doc_id: "en"}).language == "en" and len(reads) == 5
    assert other.read(path, 10_000).language == "it" and len(reads) == 6
    assert other.read(path, 10_000).language == "it" and len(reads) == 6
    # Over a smaller limit it is read again, for its error.
    with pytest.raises(DocumentError, match="limit"):
        cache.read(path, 5)
    cache.keep_only([])
    assert len(cache) == 0
    path.unlink()
    with pytest.raises(DocumentError, match="no such file"):
        cache.read(path, 10_000)
