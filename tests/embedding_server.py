"""A small OpenAI-compatible embeddings server for the tests: ``POST /v1/embeddings``
answered by the local multilingual-e5-small folder, as vLLM or Text Embeddings Inference
would serve it (the texts arrive with their prompts; nothing is added here)."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def embeddings_server(
    model_folder: Path, served_name: str = "multilingual-e5-small"
) -> Iterator[tuple[str, list[str]]]:
    """Serves the model on 127.0.0.1; yields the base URL and the list of texts received."""
    import uvicorn
    from fastapi import FastAPI, HTTPException
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_folder), device="cpu", model_kwargs={"dtype": "float32"})
    received: list[str] = []
    app = FastAPI()

    @app.post("/v1/embeddings")
    def embeddings(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("model") != served_name:
            raise HTTPException(404, f"model {body.get('model')!r} is not served here")
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if not all(isinstance(t, str) for t in texts):
            raise HTTPException(400, "this server takes text, not token ids")
        received.extend(texts)
        vectors = model.encode(texts, normalize_embeddings=False, convert_to_numpy=True).astype(np.float32)
        base64_wanted = body.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i,
             "embedding": base64.b64encode(v.tobytes()).decode() if base64_wanted else v.tolist()}
            for i, v in enumerate(vectors)
        ]
        return {"object": "list", "data": data, "model": served_name,
                "usage": {"prompt_tokens": 0, "total_tokens": 0}}

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test embeddings server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1", received
    finally:
        server.should_exit = True
        thread.join(timeout=10)
