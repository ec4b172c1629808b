"""Prepared embedding models by name: their prompts and calibrated retrieval settings apply
unless the user set them; an unprepared one says how to prepare it (no model loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import load_settings
from rag.errors import ConfigError, ModelNotFoundError
from rag.search.embedding import model_location
from rag.search.embedding_models import E5_SMALL, EMBEDDINGGEMMA, known_model


def test_each_model_brings_its_calibrated_threshold(tmp_path: Path) -> None:
    e5 = load_settings(home=tmp_path)
    gemma = load_settings(home=tmp_path, embedding={"model": "embeddinggemma"})
    assert e5.retrieval.min_relevance == E5_SMALL.retrieval["min_relevance"]
    assert gemma.retrieval.min_relevance == EMBEDDINGGEMMA.retrieval["min_relevance"]
    assert e5.embedding.query_prompt == "query: " and gemma.embedding.query_prompt is None  # the model's own


def test_settings_the_user_gave_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(home=tmp_path, embedding={"model": "embeddinggemma", "query_prompt": "q: "},
                      retrieval={"min_relevance": 0.5, "k": 6})
    assert (s.retrieval.min_relevance, s.retrieval.k, s.embedding.query_prompt) == (0.5, 6, "q: ")
    assert s.retrieval.bm25_weight == EMBEDDINGGEMMA.retrieval["bm25_weight"]  # the rest stays calibrated
    monkeypatch.setenv("RAG_EMBEDDING__MODEL", "embeddinggemma")
    monkeypatch.setenv("RAG_RETRIEVAL__MIN_RELEVANCE", "0.33")
    assert load_settings(home=tmp_path).retrieval.min_relevance == 0.33


def test_models_are_known_by_name_or_folder(tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert known_model("e5-small", tmp_path, models) is E5_SMALL
    assert known_model("models/multilingual-e5-small", tmp_path, models) is E5_SMALL
    assert known_model(str(models / EMBEDDINGGEMMA.folder), tmp_path, models) is EMBEDDINGGEMMA
    assert known_model("models/../models/embeddinggemma-300m", tmp_path, models) is EMBEDDINGGEMMA
    # With models elsewhere, the old relative path names a folder that is not the prepared one.
    assert known_model("models/multilingual-e5-small", tmp_path, tmp_path / "elsewhere") is None
    assert known_model("/elsewhere/my-model", tmp_path, models) is None
    own = load_settings(home=tmp_path, embedding={"model": "/elsewhere/my-model"})
    assert own.embedding.query_prompt is None  # the folder's own prompts, if any


def test_an_unprepared_model_says_how_to_prepare_it(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path, embedding={"model": "embeddinggemma"})
    how = r"embeddinggemma is not prepared .*rag setup --embedding embeddinggemma"
    with pytest.raises(ModelNotFoundError, match=how):
        model_location(s)
    with pytest.raises(ModelNotFoundError, match=r"e5-small is not prepared .*README set-up command"):
        model_location(load_settings(home=tmp_path))


def test_matryoshka_sizes_are_checked_and_calibrated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"embedding\.dimensions"):
        load_settings(home=tmp_path, embedding={"model": "embeddinggemma", "dimensions": 8})
    with pytest.raises(ConfigError, match=r"embeddinggemma is calibrated for sizes 768, 256; got 512"):
        load_settings(home=tmp_path, embedding={"model": "embeddinggemma", "dimensions": 512})
    with pytest.raises(ConfigError, match=r"e5-small is calibrated for sizes none"):
        load_settings(home=tmp_path, embedding={"dimensions": 256})
    small = load_settings(home=tmp_path, embedding={"model": "embeddinggemma", "dimensions": 256})
    assert small.retrieval.min_relevance == EMBEDDINGGEMMA.dimensions[256]["min_relevance"]
    assert small.retrieval.bm25_weight == EMBEDDINGGEMMA.retrieval["bm25_weight"]
