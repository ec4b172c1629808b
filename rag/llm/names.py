"""The names of the answer engines, written once (config, CLI, UI and the registry read them here)."""

# Chat backends: name -> module of its implementation, with ``create(cfg, home)``,
# ``identity(cfg)`` (for caches) and ``describe(cfg)`` (for people).
BACKEND_MODULES = {"llamacpp": "rag.llm.llamacpp", "openai": "rag.llm.openai"}
BACKENDS: tuple[str, ...] = tuple(BACKEND_MODULES)
DEFAULT_BACKEND = BACKENDS[0]
# Not a backend: the answer is quoted from the passages, no chat model involved.
EXTRACTIVE = "extractive"
ANSWER_ENGINES: tuple[str, ...] = (*BACKENDS, EXTRACTIVE)
