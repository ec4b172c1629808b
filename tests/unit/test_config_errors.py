"""Bad settings and per-call options give one clear ConfigError, not a traceback."""

import json
from pathlib import Path

import pytest

from rag.config import Settings, load_settings, passage_count
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


def test_config_file_not_in_utf8_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "rag.toml"
    bad.write_bytes('[llm]\nopenai_model = "modèle"\n'.encode("latin-1"))
    monkeypatch.setenv("RAG_CONFIG", str(bad))
    with pytest.raises(ConfigError, match="not UTF-8"):
        Settings(home=tmp_path)


def test_bad_environment_value_is_one_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_RETRIEVAL__K", "abc")
    monkeypatch.setenv("RAG_LLM__BACKEND", "nonsense")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message
    assert "retrieval.k" in message and "RAG_RETRIEVAL__K" in message and "'abc'" in message
    assert "llm.backend" in message and "RAG_LLM__BACKEND" in message


def test_bad_keyword_argument_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"chunking: .*overlap_tokens must be smaller"):
        load_settings(chunking={"chunk_tokens": 32, "overlap_tokens": 40})


@pytest.mark.parametrize(("var", "expected"), [("RAG_EVAL_ANSWERS_N", r"answers_n: .*RAG_EVAL_ANSWERS_N"),
                                               ("RAG_EVAL_KS", "ks")])
def test_bad_eval_environment_breaks_only_eval_commands(
    monkeypatch: pytest.MonkeyPatch, var: str, expected: str
) -> None:
    from evals.settings import load_eval_settings
    from rag.cli import build_parser

    monkeypatch.setenv(var, "abc")
    build_parser()  # other commands still parse: the bad value is reported by eval commands only
    with pytest.raises(ConfigError, match=expected):
        load_eval_settings()


def test_secrets_are_hidden_and_long_values_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "rag.toml"
    toml.write_text('openai_api_key = "sk-live-SECRET"\n[ui]\npassword = 12345678\n', encoding="utf-8")
    monkeypatch.setenv("RAG_CONFIG", str(toml))
    monkeypatch.setenv("RAG_RETRIEVAL__K", "x" * 5000)
    with pytest.raises(ConfigError) as info:
        load_settings(home=tmp_path)
    message = str(info.value)
    assert "SECRET" not in message and "12345678" not in message
    assert "openai_api_key: not a known setting" in message and "ui.password" in message
    assert "retrieval.k" in message and len(message) < 600


def test_unparsable_environment_value_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM", "abc")  # a whole section must be JSON
    with pytest.raises(ConfigError, match="llm"):
        load_settings()


@pytest.mark.parametrize("var", ["RAG_UI__PASSWORD", "RAG_UI__USERNAME"])
def test_half_a_login_is_refused_not_ignored(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "s3cret-value")
    with pytest.raises(ConfigError, match=r"needs both ui\.username and ui\.password") as info:
        load_settings()
    assert "s3cret-value" not in str(info.value)


def test_full_login_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_UI__USERNAME", "redazione")
    monkeypatch.setenv("RAG_UI__PASSWORD", "s3cret-value")
    ui = load_settings().ui
    assert ui.username == "redazione" and ui.password is not None


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [("RAG_EVAL_SWEEP_STEP", "0", "sweep_step"), ("RAG_EVAL_KS", "[1,3,10]", "include 1 and 5")],
)
def test_eval_settings_that_would_crash_later_are_refused(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, expected: str
) -> None:
    from evals.settings import load_eval_settings

    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=expected):
        load_eval_settings()


def test_numbers_named_like_tokens_are_shown_not_hidden() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(chunking={"chunk_tokens": 99999})
    assert "got 99999" in str(info.value)


def test_home_argument_reads_that_folders_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_CONFIG", raising=False)
    monkeypatch.delenv("RAG_HOME", raising=False)
    (tmp_path / "rag.toml").write_text("[retrieval]\nk = 7\n", encoding="utf-8")
    assert load_settings(home=tmp_path).retrieval.k == 7


def test_config_file_with_a_bom_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "rag.toml"
    bad.write_bytes("\ufeff[retrieval]\nk = 7\n".encode())
    monkeypatch.setenv("RAG_CONFIG", str(bad))
    with pytest.raises(ConfigError, match="byte-order mark"):
        Settings(home=tmp_path)


def test_settings_precedence_arguments_environment_file_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "rag.toml"
    toml.write_text("[retrieval]\nk = 3\nbm25_weight = 0.7\nrerank_k = 5\n", encoding="utf-8")
    monkeypatch.setenv("RAG_CONFIG", str(toml))
    monkeypatch.setenv("RAG_RETRIEVAL__K", "6")
    monkeypatch.setenv("RAG_RETRIEVAL__BM25_WEIGHT", "0.9")
    # Each key from the strongest source that sets it (sections are merged, not replaced).
    s = load_settings(home=tmp_path, retrieval={"k": 8})
    assert (s.retrieval.k, s.retrieval.bm25_weight, s.retrieval.rerank_k) == (8, 0.9, 5)
    s = load_settings(home=tmp_path)
    assert (s.retrieval.k, s.retrieval.bm25_weight, s.retrieval.rerank_k) == (6, 0.9, 5)
    assert s.retrieval.sentence_weight == 1.0  # set nowhere: the default


def test_rag_config_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM__OPENAI_API_KEY", "sk-live-SECRET")
    monkeypatch.setenv("RAG_UI__USERNAME", "ada")
    monkeypatch.setenv("RAG_UI__PASSWORD", "hunter2hunter2")
    shown = json.dumps(load_settings().public_dict())
    assert "SECRET" not in shown and "hunter2" not in shown and '"ada"' in shown
