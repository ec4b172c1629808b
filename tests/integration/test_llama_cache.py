"""Answers must not depend on what was asked before (rag/llama_cache.py), with the real GGUF model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import DEFAULT_GGUF
from rag.llm.llama_cache import BATCH, aligned_llama_class

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "docs_store"


def _last_logits_cold_and_warm(llama_class: type) -> tuple[np.ndarray, np.ndarray]:
    """Logits after a 600-token prompt: evaluated fresh, and again after a prompt sharing 310 tokens."""
    path = REPO / DEFAULT_GGUF
    if not path.is_file():
        pytest.fail("the embedded chat model is not prepared (run the README set-up)")
    llm = llama_class(model_path=str(path), n_ctx=2048, n_threads=2, n_batch=BATCH, n_ubatch=BATCH,
                      logits_all=True, verbose=False)
    text = next(SEED.glob("*.txt")).read_text(encoding="utf-8")
    tokens = llm.tokenize(text.encode())
    assert len(tokens) > 600
    prompt = tokens[:600]
    other = tokens[:310] + llm.tokenize(b" Un altro seguito, del tutto diverso.", add_bos=False)

    def last(p: list[int]) -> np.ndarray:
        next(llm.generate(p, temp=0.0))  # evaluates the prompt, reusing what the cache shares with it
        return llm.scores[len(p) - 1].copy()

    cold = last(prompt)
    last(other)
    return cold, last(prompt)


def test_prompt_cache_reuse_gives_the_same_logits() -> None:
    cold, warm = _last_logits_cold_and_warm(aligned_llama_class())
    assert np.array_equal(cold, warm)


def test_plain_llama_cpp_reuse_changes_the_logits() -> None:
    # Why AlignedLlama exists (and proof the test above can fail): with llama-cpp-python's own
    # prefix reuse the same prompt gets other logits. If this starts failing after an upgrade,
    # llama.cpp has become exact and AlignedLlama can go.
    from llama_cpp import Llama

    cold, warm = _last_logits_cold_and_warm(Llama)
    assert not np.array_equal(cold, warm)
