"""EmbeddingGemma end to end, when `rag setup --embedding embeddinggemma` has prepared it (its 1.1 GB
download is opt-in, so a machine without it skips, saying why): fp32, the model's own prompts,
the seed article found in both languages, the calibrated refusal, and a switch of model
rebuilding the index once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag import Assistant
from rag.provision.gemma_parts import is_prepared
from rag.search.embedding_models import EMBEDDINGGEMMA
from tests.conftest import REPO, make_settings

pytestmark = pytest.mark.slow
FOLDER = REPO / "models" / EMBEDDINGGEMMA.folder
if not is_prepared(FOLDER):
    pytest.skip(f"EmbeddingGemma is not prepared in {FOLDER} (opt-in 1.1 GB download under the Gemma terms: "
                "`rag setup --embedding embeddinggemma`)", allow_module_level=True)


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    from tests.conftest import SEED

    home = tmp_path_factory.mktemp("gemma-home")
    (home / "docs_store").mkdir()
    (home / "docs_store" / SEED.name).write_bytes(SEED.read_bytes())
    a = Assistant(make_settings(home, embedding={"model": "embeddinggemma"}))
    a.index(progress=False)
    return a


def test_loads_in_float32_with_its_own_prompts(gemma: Assistant) -> None:
    embedder = gemma.embedder
    model = embedder.model  # type: ignore[attr-defined]
    assert embedder.dim == 768 and next(model.parameters()).dtype.is_floating_point
    assert str(next(model.parameters()).dtype) == "torch.float32"
    assert embedder.query_prompt == "task: search result | query: "  # type: ignore[attr-defined]
    assert embedder.document_prompt == "title: none | text: "  # type: ignore[attr-defined]
    ours = embedder.encode_queries(["Chi ha firmato il patto?"])
    theirs = model.encode_query(["Chi ha firmato il patto?"], normalize_embeddings=True)
    assert np.allclose(ours, theirs, atol=1e-5)
    assert gemma.settings.retrieval.min_relevance == EMBEDDINGGEMMA.retrieval["min_relevance"]


@pytest.mark.parametrize("question", ["Chi ha firmato l'accordo di mutua difesa?",
                                      "Who signed the mutual defence agreement?"])
def test_finds_the_answer_in_both_languages(gemma: Assistant, question: str) -> None:
    hits = gemma.search(question, k=2)
    assert any("Putin" in h.text and "Kim" in h.text for h in hits), [h.text[:80] for h in hits]


def test_off_topic_questions_are_refused(gemma: Assistant) -> None:
    for question in ("Qual è la capitale dell'Australia?", "Who won the last football world cup?"):
        answer = gemma.ask(question, backend="extractive")
        assert not answer.answerable, (question, answer.relevance)


def test_switching_model_rebuilds_once(gemma: Assistant, tmp_path: Path) -> None:
    e5 = Assistant(make_settings(gemma.settings.home))
    report = e5.index(progress=False)
    assert report.action == "rebuilt" and "embedding model changed" in (report.reason or "")
    assert Assistant(make_settings(gemma.settings.home)).index(progress=False).action == "loaded"
    back = Assistant(gemma.settings).index(progress=False)
    assert back.action == "rebuilt"
