"""Embeddings from an OpenAI-compatible server (``embedding.backend = "openai"``), against a
real local server (tests/embedding_server.py) serving the same e5 model as the default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag import Assistant, RagError
from rag.config import DEFAULT_E5_DIR
from rag.search.stores import read_manifest
from tests.conftest import REPO, make_settings
from tests.embedding_server import _free_port, embeddings_server

pytestmark = pytest.mark.slow

E5 = REPO / DEFAULT_E5_DIR


def _remote(home: Path, url: str) -> Assistant:
    embedding = {"model": "e5-small", "backend": "openai", "openai_base_url": url,
                 "openai_model": "multilingual-e5-small", "batch_size": 8}
    return Assistant(make_settings(home, embedding=embedding, llm={"backend": "extractive"}))


def test_a_served_model_gives_the_local_models_vectors_and_answers(home: Path) -> None:
    local = Assistant(make_settings(home / "local", llm={"backend": "extractive"}))
    (home / "local" / "docs_store").mkdir(parents=True, exist_ok=True)
    for f in (home / "docs_store").iterdir():
        (home / "local" / "docs_store" / f.name).write_bytes(f.read_bytes())
    with embeddings_server(E5) as (url, received):
        remote = _remote(home, url)
        report = remote.index()
        assert report.action == "rebuilt" and report.chunks > 3
        # The texts went with e5's prompts in front (a generic server adds none).
        assert received and all(t.startswith(("passage: ", "query: ")) for t in received)
        texts = ["Putin ha firmato un accordo di mutua difesa con Kim Jong-un.", "Chi ha firmato l'accordo?"]
        np.testing.assert_allclose(
            remote.embedder.encode_passages(texts), local.embedder.encode_passages(texts), atol=1e-4
        )
        np.testing.assert_allclose(remote.embedder.encode_queries(texts), local.embedder.encode_queries(texts),
                                   atol=1e-4)
        question = "Chi ha firmato l'accordo di mutua difesa?"
        assert [h.chunk_id for h in remote.search(question, k=3)] == [h.chunk_id for h in local.search(question, k=3)]
        answer = remote.ask(question)
        assert answer.answerable and "Putin" in answer.text
        built_by = read_manifest(remote.settings.index_dir)
        # The model as served (not the address, which may change), its prompts and size.
        assert built_by is not None and built_by.embedding_model.startswith("openai:multilingual-e5-small+prompt:")
        assert built_by.embedding_model.endswith("/384d") and "127.0.0.1" not in built_by.embedding_model
        assert remote.embedder.encode_passages([]).shape == (0, 384)
    # The same folder with the local model: rebuilt once, never a mix of both sources' vectors.
    again = Assistant(make_settings(home, llm={"backend": "extractive"})).index()
    assert again.action == "rebuilt" and "embedding model changed" in (again.reason or "")


def test_a_server_that_does_not_answer_is_one_clear_error(home: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    with pytest.raises(RagError, match=r"embeddings server at http://127\.0\.0\.1:\d+/v1 did not answer"):
        _remote(home, url).index()
    # Credentials in the address never reach a message.
    with pytest.raises(RagError) as err:
        _remote(home, f"http://reader:s3cret@127.0.0.1:{_free_port()}/v1").index()
    assert "s3cret" not in str(err.value) and "***@127.0.0.1" in str(err.value)


def test_a_model_without_known_prompts_needs_them_set(home: Path) -> None:
    settings = make_settings(home, embedding={"model": "some-model", "backend": "openai"})
    with pytest.raises(RagError, match=r"embedding\.query_prompt"):
        Assistant(settings).index()
