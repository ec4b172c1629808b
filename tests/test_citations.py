from rag.answer import citation_grammar, fit_passages
from rag.citations import Claim, parse_claims
from rag.sentences import sentence_spans
from rag.types import Chunk, SearchHit


def _hit(text: str, n: int = 0) -> SearchHit:
    chunk = Chunk(f"d:{n}", "d", n, "T", "2024-06", None, 100, 100 + len(text), text)
    return SearchHit(chunk=chunk, score=1.0, rank=n + 1, dense_score=0.9)


def test_parse_claims_variants() -> None:
    claims = parse_claims("Putin signed it [1]. Kim offered support. [2] It was in 2024 [1, 3][2].")
    assert claims == [
        Claim("Putin signed it.", [1]),
        Claim("Kim offered support.", [2]),
        Claim("It was in 2024.", [1, 3, 2]),
    ]


def test_parse_claims_without_citations_and_noise() -> None:
    assert parse_claims("Nessuna citazione qui.") == [Claim("Nessuna citazione qui.", [])]
    assert parse_claims("[1] [2]") == []
    assert parse_claims("") == []


def test_sentence_spans_of_a_passage() -> None:
    text = 'Putin ha firmato. Kim ha offerto il suo "pieno sostegno". Fine'
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["Putin ha firmato.", 'Kim ha offerto il suo "pieno sostegno".', "Fine"]


def test_lines_without_stop_are_sentences() -> None:
    text = "date 2024-06 Un accordo\n\n\n\nDurante la visita, Putin ha firmato. Poi"
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "date 2024-06 Un accordo", "Durante la visita, Putin ha firmato.", "Poi"]


def test_grammar_lists_only_existing_numbers() -> None:
    g = citation_grammar(3)
    assert 'num ::= "1" | "2" | "3"' in g and '"4"' not in g


def test_fit_passages_never_cuts() -> None:
    hits = [_hit("parola " * 50, 0), _hit("parola " * 500, 1), _hit("breve.", 2)]
    kept = fit_passages(hits, budget_tokens=200, encoding="cl100k_base")
    assert [h.chunk.number for h in kept] == [0, 2]
    assert all(h.text == hits[h.chunk.number].text for h in kept)
