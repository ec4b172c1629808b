"""The names of the vector stores, written once (config and the registry in ``stores`` read them here)."""

# name -> module with the ``Store`` class (imported on first use).
STORE_MODULES = {"faiss": "rag.search.faiss_store", "milvus": "rag.search.milvus_store"}
STORES: tuple[str, ...] = tuple(STORE_MODULES)
DEFAULT_STORE = STORES[0]
