"""Shared fixtures. Tests never touch the repo's docs_store/ or index/: each
gets a private home with a copy of the seed article; models are shared."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rag import Assistant, Settings
from rag.config import DEFAULT_E5_DIR, DEFAULT_GGUF

REPO = Path(__file__).resolve().parent.parent
# The benchmark data (../shared/README.md): $RAG_SHARED_DIR, else beside the checkout.
SHARED = Path(os.environ.get("RAG_SHARED_DIR") or REPO.parent / "shared")
# Every assistant of the session reads the vocabularies `rag setup` prepared, whatever its home.
os.environ["TIKTOKEN_CACHE_DIR"] = str(REPO / "models" / "tiktoken")
SEED = REPO / "docs_store" / "accordo-mutua-difesa.txt"
DEV_QUESTIONS = SHARED / "bench" / "article_dev.jsonl"


def make_settings(home: Path, **overrides: object) -> Settings:
    """Settings for a private home that reuses the prepared models.

    Question translation and the answer check are off unless asked for: with them,
    a fake chat model's scripted replies would go to those steps too.
    """
    (home / "docs_store").mkdir(parents=True, exist_ok=True)
    return Settings(
        home=home,
        models_dir=REPO / "models",
        embedding=overrides.pop("embedding", {"model": str(REPO / DEFAULT_E5_DIR)}),
        llm={"model_path": str(REPO / DEFAULT_GGUF), "answer_check": False, **overrides.pop("llm", {})},  # type: ignore[dict-item]
        retrieval={"translate_query": False, **overrides.pop("retrieval", {})},  # type: ignore[dict-item]
        **overrides,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "docs_store").mkdir()
    shutil.copy(SEED, tmp_path / "docs_store" / SEED.name)
    return tmp_path


@pytest.fixture
def settings(home: Path) -> Settings:
    return make_settings(home)


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    h = tmp_path_factory.mktemp("shared-home")
    (h / "docs_store").mkdir()
    shutil.copy(SEED, h / "docs_store" / SEED.name)
    return h


@pytest.fixture(scope="session")
def assistant(shared_home: Path) -> Assistant:
    """A real assistant (real e5 model, real FAISS index) over the seed article."""
    a = Assistant(make_settings(shared_home))
    a.index(progress=False)
    return a


@pytest.fixture(scope="session")
def product_assistant(shared_home: Path) -> Assistant:
    """The seed article with the product's defaults (question translation on)."""
    a = Assistant(make_settings(shared_home, retrieval={"translate_query": True}))
    a.index(progress=False)
    return a


@pytest.fixture(scope="session")
def default_assistant(shared_home: Path) -> Assistant:
    """The seed article with every product default (translation and answer check on)."""
    a = Assistant(make_settings(shared_home, retrieval={"translate_query": True}, llm={"answer_check": True}))
    a.index(progress=False)
    return a


@pytest.fixture(scope="session")
def dev_questions() -> list[dict]:
    return [json.loads(line) for line in DEV_QUESTIONS.read_text().splitlines() if line.strip()]
