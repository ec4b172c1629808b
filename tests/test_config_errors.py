"""Bad settings and per-call options give one clear ConfigError, not a traceback."""

from pathlib import Path

import pytest

from rag.config import Settings, passage_count
from rag.errors import ConfigError


@pytest.mark.parametrize("bad", [0, -3, 51, 2.5, True, "3"])
def test_passage_count_rejects_bad_k(bad: object) -> None:
    with pytest.raises(ConfigError, match="from 1 to 50"):
        passage_count(bad, 4)


def test_passage_count_default_and_value() -> None:
    assert passage_count(None, 4) == 4 and passage_count(7, 4) == 7


def test_broken_toml_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "rag.toml"
    bad.write_text("retrieval = [\n", encoding="utf-8")
    monkeypatch.setenv("RAG_CONFIG", str(bad))
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings(home=tmp_path)
