import pytest

from rag.language import choose_answer_language, detect_language


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
