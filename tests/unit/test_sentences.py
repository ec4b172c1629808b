"""Sentence boundaries: numbers, abbreviations, initials and ordinals do not end a sentence."""

import pytest

from rag.answer.citations import parse_claims
from rag.text.sentences import join_spaced_numbers, sentence_spans


def _split(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("La superficie è di 22.392 km2. Il Reno scorre.", ["La superficie è di 22.392 km2.", "Il Reno scorre."]),
        ("Vive a St. Louis dal 1990. Poi parte.", ["Vive a St. Louis dal 1990.", "Poi parte."]),
        ("Il sig. Rossi e il Dott. Bianchi. Altro.", ["Il sig. Rossi e il Dott. Bianchi.", "Altro."]),
        ("Gli U.S.A. hanno detto. Ok.", ["Gli U.S.A. hanno detto.", "Ok."]),
        ("J. R. R. Tolkien scrisse. Fine.", ["J. R. R. Tolkien scrisse.", "Fine."]),
        ("Arrivò 3. nella gara. Dopo.", ["Arrivò 3. nella gara.", "Dopo."]),
        ("Nel 1990. 1991 fu diverso.", ["Nel 1990.", "1991 fu diverso."]),
        ("Davvero? Sì! «Citazione.» Fine", ["Davvero?", "Sì!", "«Citazione.»", "Fine"]),
        ("Titolo\nTesto uno. Testo due", ["Titolo", "Testo uno.", "Testo due"]),
        ("Parla il presidente USA. Poi", ["Parla il presidente USA.", "Poi"]),
        ("Rispose di no. Poi parlò di art. Fine.", ["Rispose di no.", "Poi parlò di art.", "Fine."]),
        # Spaced numbers (rebuilt archive text): amounts and times stay whole.
        ("Rubati per 4. 500 euro. Poi via.", ["Rubati per 4. 500 euro.", "Poi via."]),
        ("Alle 17. 30 circa. Arrivano.", ["Alle 17. 30 circa.", "Arrivano."]),
        ("Sono 1. 250. 000 euro. Fine.", ["Sono 1. 250. 000 euro.", "Fine."]),
        ("Nel 2019. 300 persone.", ["Nel 2019.", "300 persone."]),
        ("Sono 12. 3000 no.", ["Sono 12.", "3000 no."]),
        ("Per 4. 500,00 euro. Poi.", ["Per 4. 500,00 euro.", "Poi."]),
        # Dates keep day, month and year apart (as before); a list item's number is its own.
        ("Nato il 25. 06. 1989 a Roma.", ["Nato il 25.", "06.", "1989 a Roma."]),
        ("Elenco:\n1. 100 metri piani", ["Elenco:", "1.", "100 metri piani"]),
        ("Alle 17. 75 no.", ["Alle 17.", "75 no."]),
    ],
)
def test_sentence_spans(text: str, expected: list[str]) -> None:
    assert _split(text) == expected


def test_spans_are_exact_and_trimmed() -> None:
    text = "  Uno.   Due.  "
    assert sentence_spans(text) == [(2, 6), (9, 13)]
    assert sentence_spans("") == [(0, 0)]


def test_answer_claims_keep_abbreviations_whole() -> None:
    claims = parse_claims("Dr. Smith moved to St. Louis in 1990 [1]. The area is 22.392 km2 [2].")
    assert [(c.text, c.cites) for c in claims] == [
        ("Dr. Smith moved to St. Louis in 1990.", [1]),
        ("The area is 22.392 km2.", [2]),
    ]


def test_spaced_numbers_are_joined_and_nothing_else_changes() -> None:
    assert join_spaced_numbers("per 4. 500 euro, alle 17. 30, 1. 250. 000") == "per 4.500 euro, alle 17.30, 1.250.000"
    for text in ("Nel 2019. 300 persone.", "Il punto 1. Primo.", "Sono 12. 3000.", "Il 3. posto",
                 "il 25. 06. 1989", "1. 100 metri", "Vale 4. 500.5"):
        assert join_spaced_numbers(text) == text
