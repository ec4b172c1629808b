import pytest

from rag.text.language import choose_answer_language, detect_language, written_in


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Who signed the mutual defence pact?", "en"),
        ("Chi ha firmato l'accordo?", "it"),
        ("When was the article published?", "en"),
        ("Quanto è costato il viaggio di Putin?", "it"),
        ("How old is Kim Jong-un?", "en"),
        ("Whose portraits hung over the square?", "en"),
        ("Di quali colori era decorata la piazza?", "it"),
        ("E cosa ha detto Kim di lui?", "it"),
        ("Qui a signé le pacte de défense mutuelle avec la Corée du Nord ?", "fr"),
    ],
)
def test_detect(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_choices() -> None:
    fr = choose_answer_language("Qui a signé le pacte de défense mutuelle avec la Corée du Nord ?")
    assert fr.answer_language == "en" and not fr.supported and fr.script_supported
    zh = choose_answer_language("谁签署了共同防御条约？")
    assert not zh.script_supported
    assert choose_answer_language("Putin?", default="it").answer_language == "it"


@pytest.mark.parametrize("text", ["Kim Jong-un.", "Vladimir Putin.", "Donald Trump.", "Economic sanctions."])
def test_names_alone_stand_in_either_language(text: str) -> None:
    # Identifiers guess at these (Vladimir Putin. -> fr): an answer that is just a name
    # must not be retried as if written in the wrong language.
    assert written_in(text, "it") and written_in(text, "en")


def test_text_with_function_words_must_be_in_the_language() -> None:
    assert written_in("Le sanzioni economiche contro la Russia.", "it")
    assert not written_in("Le sanzioni economiche contro la Russia.", "en")
    assert not written_in("Kim offered his full support to the Russian intervention.", "it")
    assert written_in("Kim offered his full support to the Russian intervention.", "en")
