"""Embeddings, vector stores, the index kept in step with the articles, BM25 and hybrid retrieval."""
