"""One-time model preparation, run only by ``rag setup`` (never on the answer path)."""
