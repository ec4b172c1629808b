"""The threshold transfer between embedding models, on hand-made scores and sentences."""

from __future__ import annotations

import numpy as np

from evals.calibrate import matching_threshold, pass_rate, support_pairs
from evals.data import Paragraph, SquadQuestion


def test_the_matching_threshold_lets_the_same_share_through() -> None:
    reference = np.array([0.70, 0.78, 0.80, 0.82, 0.90])
    rate = pass_rate(reference, 0.765)  # 4 of 5
    other = np.array([0.20, 0.35, 0.41, 0.44, 0.60])
    t = matching_threshold(other, rate)
    assert rate == 0.8 and t == 0.35 and pass_rate(other, t) == rate
    assert matching_threshold(other, 0.0) == 0.6  # lets the top one through at least
    assert matching_threshold(np.array([]), 0.5) == 0.0


def test_support_pairs_hold_the_answer_sentence_in_both_languages() -> None:
    para = Paragraph("p1", "Storia", "Il trattato fu firmato nel 1961. La città fu ricostruita. Poi arrivò la pace.")
    q = SquadQuestion("q1", "p1", "Storia", "Quando fu firmato?", "When was it signed?", ("1961",), ("1961",))
    english = {"When was it signed?": ("The city was rebuilt. The treaty was signed in 1961.", 46)}
    pairs = support_pairs([para], [q], english)
    assert pairs == [("The treaty was signed in 1961.", "Il trattato fu firmato nel 1961.",
                      ["La città fu ricostruita.", "Poi arrivò la pace."])]
    unknown = SquadQuestion("q2", "p1", "Storia", "?", "Not in the English file?", ("1961",), ("1961",))
    assert support_pairs([para], [unknown], english) == []


def test_the_threshold_sweep_follows_the_models_scale() -> None:
    from evals.cli import _thresholds
    from evals.settings import EvalSettings

    cfg = EvalSettings(sweep_from=0.70, sweep_to=0.90, sweep_step=0.05)
    assert _thresholds(cfg, 0.765) == [0.70, 0.75, 0.80, 0.85, 0.90]  # e5: the configured range
    gemma = _thresholds(cfg, 0.253)  # EmbeddingGemma's scale: centred on its threshold
    assert gemma[0] == 0.153 and gemma[-1] == 0.353 and 0.253 in gemma
