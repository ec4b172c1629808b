"""One typed settings object for every knob.

Precedence (highest first): keyword arguments, environment variables
(``RAG_…``, nested with ``__``, e.g. ``RAG_LLM__BACKEND=openai``), the TOML
config file (``$RAG_CONFIG`` or ``<home>/rag.toml``), then the defaults here.
Relative paths are resolved against ``home`` (the project folder by default).
"""

from __future__ import annotations

import codecs
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from .errors import ConfigError
from .llm.names import ANSWER_ENGINES, DEFAULT_BACKEND
from .search.embedding_models import DEFAULT_EMBEDDING, E5_SMALL, known_model
from .search.store_names import DEFAULT_STORE, STORES

PROJECT_HOME = Path(__file__).resolve().parent.parent
DEFAULT_E5_DIR = f"models/{E5_SMALL.folder}"
DEFAULT_GGUF = "models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
# Most passages one search may return (settings and per-call ``k``).
MAX_PASSAGES = 50


def _config_file(home: str | Path | None = None) -> Path:
    """``$RAG_CONFIG``, else ``rag.toml`` in ``home`` (the argument, ``$RAG_HOME`` or the project)."""
    folder = Path(home if home is not None else os.environ.get("RAG_HOME", PROJECT_HOME)).expanduser()
    return Path(os.environ.get("RAG_CONFIG", folder / "rag.toml"))


class EmbeddingSettings(BaseModel):
    # A model `rag setup` prepares ("e5-small", "embeddinggemma":
    # rag/search/embedding_models.py), or any sentence-transformers folder or name.
    model: str = DEFAULT_EMBEDDING
    # Prepended to questions / passages. Unset: the prepared model's own
    # (e5: "query: "/"passage: "; EmbeddingGemma: its sentence-transformers prompts);
    # for a user's own model, the prompts its folder defines, else none.
    query_prompt: str | None = None
    document_prompt: str | None = None
    # Matryoshka truncation, to a size calibrated for the model (EmbeddingGemma: 256); unset = full size.
    dimensions: int | None = Field(None, ge=32)
    batch_size: int = Field(32, ge=1)
    device: str = "cpu"
    # Where the vectors are computed: "sentence-transformers" (this process, the default) or
    # "openai", an OpenAI-compatible embeddings server (vLLM, Text Embeddings Inference,
    # Infinity… on a GPU box, for large archives). With "openai", ``model`` still names the
    # model for its prompts and calibrated settings (e.g. "e5-small" when the server serves
    # multilingual-e5-small) and ``openai_model`` is the server's name for it.
    backend: Literal["sentence-transformers", "openai"] = "sentence-transformers"
    openai_base_url: str = "http://127.0.0.1:8080/v1"
    openai_model: str = "multilingual-e5-small"
    openai_api_key: SecretStr = SecretStr("not-needed")
    timeout_s: float = Field(60.0, gt=0)


class ChunkingSettings(BaseModel):
    encoding: Literal["cl100k_base", "o200k_base"] = "cl100k_base"
    chunk_tokens: int = Field(120, ge=16, le=2048)
    overlap_tokens: int = Field(24, ge=0)

    @model_validator(mode="after")
    def _overlap_smaller_than_chunk(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError("chunking.overlap_tokens must be smaller than chunking.chunk_tokens")
        return self


class IngestSettings(BaseModel):
    # Articles are data: one with text addressed to the assistant ("ignore the previous
    # instructions…", role tags) is refused ("refuse"), or taken as it is ("allow") when
    # its source is trusted (rag/corpus/screening.py).
    instructions: Literal["refuse", "allow"] = "refuse"
    # Passages one article may become: bounds the work and memory one upload can cause.
    max_passages: int = Field(2000, ge=1)


class RetrievalSettings(BaseModel):
    k: int = Field(4, ge=1, le=MAX_PASSAGES)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    # Hybrid: "score" = dense_weight x cosine + bm25_weight x BM25 as a share of the
    # query's IDF (tuned on SQuAD-it dev, see `rag eval retrieval`); "rrf" =
    # weighted reciprocal rank fusion of each retriever's top fetch_k.
    fusion: Literal["score", "rrf"] = "score"
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(0.4, ge=0)
    fetch_k: int = Field(30, ge=1)  # rrf only
    rrf_k: int = Field(60, ge=1)  # rrf only
    # BM25 term-frequency saturation and length normalisation (Lucene BM25, rag/search/lexical.py).
    bm25_k1: float = Field(0.9, gt=0)
    bm25_b: float = Field(0.4, ge=0, le=1)
    # Score fusion: passages scored in full are the vector store's best dense_candidates
    # and BM25's best dense_candidates for each wording of the question.
    dense_candidates: int = Field(100, ge=1)
    # Score fusion: the best rerank_k candidates get sentence_weight x the cosine of
    # their best-matching sentence added (0 turns the re-score off).
    rerank_k: int = Field(10, ge=0)
    sentence_weight: float = Field(1.0, ge=0)
    max_query_chars: int = Field(2000, ge=10)
    # When the articles include a language other than the question's, the chat
    # model translates the question and both wordings are searched (rag/answer/translate.py).
    translate_query: bool = True
    # Below this cosine between the question and the best retrieved sentence,
    # the question is refused without calling the LLM (see rag/answer/gate.py).
    # Unset: the value calibrated for the embedding model (rag/search/embedding_models.py).
    min_relevance: float = E5_SMALL.retrieval["min_relevance"]
    # The cosine between a claim of the answer and a passage sentence in another language
    # that counts as support (same language: shared words). Unset: calibrated per model.
    min_support: float = Field(E5_SMALL.retrieval["min_support"], ge=-1, le=1)


def one_of(names: tuple[str, ...]) -> AfterValidator:
    """A string setting that must be one of ``names`` (registries fill them at run time)."""

    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"must be one of {', '.join(names)}")
        return value

    return AfterValidator(check)


class IndexSettings(BaseModel):
    # A vector store of rag/search/stores.py.
    backend: Annotated[str, one_of(STORES)] = DEFAULT_STORE
    # While many articles are embedded, the index is saved this often (seconds) with the
    # articles done so far: an interrupted `rag ingest` resumes there, nothing embedded twice.
    checkpoint_s: float = Field(60.0, ge=0)
    # FAISS searches exactly while the index is small; from this many passages on, with an HNSW
    # graph (approximate; links ann_m per node, ann_ef_search candidates per search). Exact
    # search reads every vector per question: ~1.5 KB each, 10 GB at 1M articles.
    ann_from: int = Field(200_000, ge=0)
    ann_m: int = Field(32, ge=4, le=128)
    ann_ef_search: int = Field(128, ge=8)
    ann_ef_construction: int = Field(80, ge=8)
    # Embed each passage's sentences at ingest too and keep them beside the index (index/sentences/):
    # the search re-scores its best candidates by their best sentence and the citation check
    # compares claims with sentences, so without them every question embeds ~50 sentences
    # (most of a search at archive size). Costs ~1.6x the ingest time, 3.5 KB of disk and memory a passage.
    sentence_vectors: bool = True
    # backend "milvus": a file path runs Milvus Lite in this process ("" = index/milvus.db; one
    # process at a time), "http://host:19530" a Milvus server that processes and machines share.
    milvus_uri: str = ""
    milvus_token: SecretStr | None = None
    # Each build is a collection named "<this>_<build id>"; the manifest names the current one.
    milvus_collection: str = Field("rag_passages", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,180}$")
    # FLAT is exact (as FAISS below ann_from); HNSW (ann_m, ann_ef_*) or AUTOINDEX for millions.
    milvus_index: Literal["FLAT", "HNSW", "AUTOINDEX"] = "FLAT"
    milvus_timeout_s: float = Field(30.0, gt=0)


class LLMSettings(BaseModel):
    # A chat backend of rag/llm/names.py, or the extractive engine (quotes, no chat model).
    backend: Annotated[str, one_of(ANSWER_ENGINES)] = DEFAULT_BACKEND
    fallback_to_extractive: bool = True
    # When the model's answer has no sentence a passage supports: False refuses (the
    # default: on off-topic questions those answers were invented), True quotes the
    # best-matching sentences instead, as when the backend fails (more answerable
    # questions get something, off-topic ones get unrelated quotes; see docs/decisions.md).
    quote_unverified: bool = False
    # After answering, ask the model whether the sentences it cites answer the question
    # and refuse when it says no (rag/answer/check.py): it catches answers made from a
    # related passage when the one holding the answer is missing. Costs one short call.
    answer_check: bool = True
    # Refuse an answer to "Come si chiama…?" / "What is the name of…?" that brings no name of
    # its own (a role, or the question's own place): model-free (rag/answer/check.py). Off
    # for encyclopedic text, where such questions often ask for a term ("tutor", "guru").
    name_check: bool = True
    # When every indexed passage fits in this many tokens (about one or two articles), the
    # model reads them all, in a fixed order, instead of the retrieved ones: it cannot
    # miss the passage holding the answer, and each prompt starts the same, so the
    # passages are read once per language (prompt_cache_mb). 0 always uses retrieval.
    whole_corpus_tokens: int = Field(2500, ge=0)
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(200, ge=16)
    timeout_s: float = Field(120.0, gt=0)
    # llama.cpp (embedded)
    model_path: str = DEFAULT_GGUF
    n_ctx: int = Field(4096, ge=512)
    n_threads: int | None = None
    use_grammar: bool = True
    # Memory for snapshots of recently read prompts (rag/llm/llama_cache.py): with an
    # article shown whole, each language's passages are read once, not per question.
    # About 29 KB a token with the default model; 0 turns the snapshots off.
    prompt_cache_mb: int = Field(256, ge=0)
    # Long prompts' snapshots are also saved here (as much again on disk), so a new process
    # (`rag ask`) finds the article already read. "" is prompt-states/ in the index folder;
    # "off" keeps them in memory only.
    prompt_cache_dir: str = ""
    # OpenAI-compatible server
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_model: str = "local-model"
    openai_api_key: SecretStr = SecretStr("not-needed")


class UISettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    language: Literal["it", "en"] = "it"
    concurrency: int = Field(4, ge=1)
    # Who may add and remove articles from the page: "auto" = the admin account when one is
    # set, else everyone when the page is served on this machine only (loopback) or behind
    # a login, nobody otherwise; "on"; "off"; "admin" = only the admin account below.
    uploads: Literal["auto", "on", "off", "admin"] = "auto"
    admin_username: str | None = None
    admin_password: SecretStr | None = None
    # One upload at most: files and bytes in all.
    max_upload_files: int = Field(10, ge=1)
    max_upload_bytes: int = Field(20_000_000, ge=1)

    @model_validator(mode="after")
    def _login_needs_both(self) -> UISettings:
        # Half a login would serve the page to anyone without a word.
        for prefix in ("", "admin_"):
            user = getattr(self, f"{prefix}username")
            secret = getattr(self, f"{prefix}password")
            has_user, has_password = bool(user), bool(secret and secret.get_secret_value())
            if has_user != has_password:
                given, missing = ("username", "password") if has_user else ("password", "username")
                raise ValueError(
                    f"a login needs both ui.{prefix}username and ui.{prefix}password; only the {given} is set "
                    f"(set RAG_UI__{prefix.upper()}{missing.upper()} too, or neither)"
                )
        if self.uploads == "admin" and not self.admin_username:
            raise ValueError('ui.uploads = "admin" needs ui.admin_username and ui.admin_password')
        if self.admin_username and self.admin_username == self.username:
            raise ValueError("ui.admin_username must differ from ui.username (two accounts, two passwords)")
        return self


def resolve_path(path: str | Path, home: Path) -> Path:
    """``path`` with ``~`` expanded, relative paths taken from ``home`` (the project folder)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else home / p


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = PROJECT_HOME
    docs_dir: Path = Path("docs_store")
    index_dir: Path = Path("index")
    models_dir: Path = Path("models")
    max_document_bytes: int = Field(5_000_000, ge=1)

    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    ingest: IngestSettings = IngestSettings()
    index: IndexSettings = IndexSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    llm: LLMSettings = LLMSettings()
    ui: UISettings = UISettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # A home given as an argument (``Assistant(home=...)``) has its own rag.toml.
        home = getattr(init_settings, "init_kwargs", {}).get("home")
        return (
            init_settings,
            env_settings,
            _toml_source(settings_cls, _config_file(home)),
        )

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        for name in ("docs_dir", "index_dir", "models_dir"):
            setattr(self, name, self.resolve(getattr(self, name)))
        uri = self.index.milvus_uri
        if uri and "://" not in uri:  # a Milvus Lite file, relative to home like the other paths
            self.index.milvus_uri = str(self.resolve(Path(uri)))
        return self

    @model_validator(mode="after")
    def _embedding_model_defaults(self) -> Settings:
        """A prepared model's prompts and calibrated retrieval settings, where the user set none:
        a cosine threshold or a fusion weight tuned for one model is wrong for another."""
        model = known_model(self.embedding.model, self.home, self.models_dir)
        if model is None:
            return self
        size = self.embedding.dimensions
        if size is not None and size not in model.dimensions:
            sizes = ", ".join(map(str, model.dimensions)) or "none (it is not a Matryoshka model)"
            raise ValueError(f"embedding.dimensions: {model.name} is calibrated for sizes {sizes}; got {size}")
        prompts = {"query_prompt": model.query_prompt, "document_prompt": model.document_prompt}
        unset = {k: v for k, v in prompts.items() if k not in self.embedding.model_fields_set}
        self.embedding = self.embedding.model_copy(update=unset)
        calibrated = {k: v for k, v in model.calibrated(size).items() if k not in self.retrieval.model_fields_set}
        self.retrieval = self.retrieval.model_copy(update=calibrated)
        return self

    def resolve(self, path: str | Path) -> Path:
        """A path from the settings, relative paths taken from ``home``."""
        return resolve_path(path, self.home)

    def public_dict(self) -> dict[str, Any]:
        """Effective settings, JSON-safe, secrets masked (credentials inside URLs too)."""
        data = self.model_dump(mode="json")
        data["llm"]["openai_base_url"] = mask_url(data["llm"]["openai_base_url"])
        data["embedding"]["openai_base_url"] = mask_url(data["embedding"]["openai_base_url"])
        return data


# Up to the last "@" before the host: a password may hold "@" itself.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s]+@", re.IGNORECASE)


def mask_url(text: str) -> str:
    """``text`` with the user:password of any URL in it replaced by ``***``."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", text)


def _toml_source(settings_cls: type[BaseSettings], path: Path) -> TomlConfigSettingsSource:
    """The config file as a settings source; a syntax error is a ConfigError, not a traceback."""
    try:
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    except tomllib.TOMLDecodeError as err:
        if path.read_bytes().startswith(codecs.BOM_UTF8):  # Windows editors add one; TOML forbids it
            raise ConfigError(f"{path}: starts with a byte-order mark; save it as UTF-8 without BOM.") from err
        raise ConfigError(f"{path}: not valid TOML ({err}).") from err
    except UnicodeDecodeError as err:
        why = f"{err.reason} at byte {err.start}"
        raise ConfigError(f"{path}: not UTF-8 text (TOML files must be UTF-8; {why}).") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err}).") from err


def passage_count(k: object, default: int) -> int:
    """``k`` passages to retrieve (``default`` when None), or a clear ConfigError."""
    if k is None:
        return default
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_PASSAGES:
        raise ConfigError(f"The number of passages must be a whole number from 1 to {MAX_PASSAGES}; got {k!r}.")
    return k


# Values of these settings never appear in error messages.
# Matched against the setting's own name: "llm.openai_api_key", not "chunking.chunk_tokens".
_SECRET_NAME = re.compile(r"(?:^|_)(?:key|password|secret|token)$", re.IGNORECASE)
_MAX_SHOWN_VALUE = 60


def _shown(name: str, value: object) -> str:
    if _SECRET_NAME.search(name.rsplit(".", 1)[-1]):
        return "a hidden value"
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN_VALUE else text[: _MAX_SHOWN_VALUE - 1] + "…"


def settings_error_message(
    err: ValidationError | SettingsError, env_prefix: str = "RAG_", elsewhere: str = "the config file"
) -> str:
    """One line per bad setting: its dotted key, what is wrong, the value (secrets hidden,
    long values cut) and the environment variable that sets it."""
    if isinstance(err, SettingsError):  # a value the environment source cannot even parse
        return f"invalid settings: {err}"
    lines = []
    for e in err.errors():
        names = [str(part) for part in e["loc"] if not isinstance(part, int)]  # no list indices
        key = ".".join(str(part) for part in e["loc"]) or "settings"
        line = f"{key}: {e['msg']}"
        if e.get("type") == "extra_forbidden":
            line = f"{key}: not a known setting (see `rag config` for the settings and their sections)"
        elif e.get("type") != "missing" and names and not isinstance(e.get("input"), dict):  # a value
            env = env_prefix + "__".join(names).upper()
            line += f" (got {_shown(key, e['input'])}; from {env} or {elsewhere})"
        lines.append(line)
    return "invalid settings: " + "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """The effective settings; a bad value is one ConfigError naming the setting, not a traceback."""
    try:
        return Settings(**overrides)
    except (ValidationError, SettingsError) as err:
        raise ConfigError(settings_error_message(err)) from err
