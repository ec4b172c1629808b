"""Settings of ``rag eval`` (environment ``RAG_EVAL_…`` or CLI options).

Kept apart from ``rag.config.Settings`` (which forbids unknown keys) so the
evaluation extra stays optional; relative paths are taken from the project home.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from rag.config import PROJECT_HOME, settings_error_message
from rag.errors import ConfigError


class EvalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_EVAL_", extra="ignore")

    results_dir: Path = Path("results")
    # Eval-only indexes and embedding caches; never the user's index/.
    cache_dir: Path = Path(".cache/eval")
    # The benchmark data (../shared/README.md); relative to the project folder.
    shared_dir: Path = Field(Path("../shared"), validation_alias=AliasChoices("RAG_EVAL_SHARED_DIR", "RAG_SHARED_DIR"))
    # Each defaults to its place in shared_dir.
    article_questions: Path | None = None
    news_questions: Path | None = None
    corpus: Path | None = None
    squad_questions: Path | None = None
    squad_english: Path | None = None  # English SQuAD v1.1 dev (threshold calibration)
    # Answer benchmark: questions sampled from the dev set, each asked in Italian and English.
    answers_n: int = Field(10, ge=1)
    # Also ask each sampled question without its gold paragraph in the index (it doubles the run).
    hard_negatives: bool = False
    seed: int = 0
    # Cut-offs of the recall@k curves.
    ks: tuple[int, ...] = (1, 2, 3, 4, 5, 10)
    # Refusal-threshold sweep (best dense cosine of the retrieved passages).
    sweep_from: float = 0.70
    sweep_to: float = 0.90
    sweep_step: float = Field(0.01, gt=0)

    @model_validator(mode="after")
    def _data_paths(self) -> EvalSettings:
        shared = self.shared_dir if self.shared_dir.is_absolute() else (PROJECT_HOME / self.shared_dir).resolve()
        self.shared_dir = shared
        defaults = {
            "article_questions": "bench/article_dev.jsonl",
            "news_questions": "bench/news_qa/news_dev.jsonl",
            "corpus": "bench/squad_it/corpus.jsonl.gz",
            "squad_questions": "bench/squad_it/dev_questions.jsonl",
            "squad_english": "bench/squad_it/squad_en_dev-v1.1.rebuilt.json.gz",
        }
        for name, where in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, shared / where)
        return self

    @field_validator("ks")
    @classmethod
    def _cutoffs(cls, ks: tuple[int, ...]) -> tuple[int, ...]:
        # The tables report recall@1 and recall@5; the curve may add any others.
        if any(k < 1 for k in ks) or not {1, 5} <= set(ks):
            raise ValueError("the recall cut-offs must be positive and include 1 and 5, e.g. [1,3,5,10]")
        return tuple(sorted(set(ks)))


def load_eval_settings() -> EvalSettings:
    """The eval settings; a bad ``RAG_EVAL_…`` value is one ConfigError, not a traceback."""
    try:
        return EvalSettings()
    except (ValidationError, SettingsError) as err:
        raise ConfigError(settings_error_message(err, "RAG_EVAL_", "a rag eval option")) from err


def eval_defaults() -> EvalSettings:
    """Defaults for the ``rag eval`` option help: the environment when valid, else the built-in
    values (the bad variable is then reported when an eval command runs, not by every command)."""
    try:
        return load_eval_settings()
    except ConfigError:
        return EvalSettings.model_construct()._data_paths()
