from itertools import pairwise

import pytest

from rag.config import ChunkingSettings
from rag.corpus.chunking import chunk_document, protect_non_boundaries
from rag.corpus.documents import parse_article, read_article
from rag.text.tokens import count_tokens
from tests.conftest import SEED


def test_spans_equal_text_and_headings() -> None:
    doc = read_article(SEED, 10**6)
    chunks = chunk_document(doc, ChunkingSettings())
    assert chunks[0].text.startswith("date 2024-06 Un accordo di mutua difesa\n")
    assert "Durante la visita, Putin ha firmato" in chunks[0].text
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.doc_id == doc.doc_id and c.chunk_id == f"{doc.doc_id}:{c.number:04d}"
    assert [c.number for c in chunks] == list(range(len(chunks)))
    kim = next(c for c in chunks if "accusano" in c.text)
    assert kim.heading == "Il ruolo degli USA e le parole di Kim"
    assert chunks[1].heading is None


def test_chunks_respect_token_size_and_sentences() -> None:
    cfg = ChunkingSettings(chunk_tokens=40, overlap_tokens=10)
    doc = read_article(SEED, 10**6)
    chunks = chunk_document(doc, cfg)
    assert len(chunks) > 8
    for c in chunks:
        assert count_tokens(c.text) <= cfg.chunk_tokens
        assert doc.text[c.start : c.end] == c.text
    # overlap: consecutive chunks of a section share text
    assert any(b.start < a.end for a, b in pairwise(chunks[1:]))


def test_repeated_sentences_get_distinct_spans() -> None:
    text = "Titolo\n\n" + "La stessa frase si ripete. " * 30
    doc = parse_article(text, "r.txt", "r")
    chunks = chunk_document(doc, ChunkingSettings(chunk_tokens=20, overlap_tokens=0))
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts))
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)


@pytest.mark.parametrize("size", [40, 60, 120])
def test_no_boundary_inside_names_and_abbreviations(size: int) -> None:
    # Sentences of about 35 tokens: chunks must end at full stops, never at the ones after an
    # initial or an abbreviation, which LangChain's ". " separator takes (it did at these sizes).
    sentence = "Nel 1986 Thomas S. Murphy lasciò la rete e il dott. Rossi arrivò a St. Louis con la ABC Inc. e altri. "
    doc = parse_article("Titolo\n\n" + sentence * 12, "n.txt", "n")
    chunks = chunk_document(doc, ChunkingSettings(chunk_tokens=size, overlap_tokens=0))
    assert len(chunks) > 3
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text and "\u2063" not in c.text
        assert c.text.startswith("Nel 1986") and c.text.endswith("altri."), c.text


def test_protect_non_boundaries_keeps_length_and_real_ends() -> None:
    text = "Lo disse Thomas S. Murphy. Poi partì per St. Louis. Fine."
    protected = protect_non_boundaries(text)
    assert len(protected) == len(text)
    assert protected.count("\u2063") == 2  # after "S." and "St."
    assert protected.replace("\u2063", " ") == text
