"""Per-head distances over many texts (`compare_texts`): each text's `compare`, averaged over every compared
query row; zero for a model against itself; the zeroed-query head found as the most changed; the errors."""

from __future__ import annotations

import numpy as np
import pytest

import attnscope
from attnscope.analysis.comparison import compare_models
from attnscope.analysis.comparison_texts import compare_texts
from attnscope.errors import InputError

from .conftest import PUB

TEXTS = [PUB, "Dogs bark.", "She said that the report, which nobody read, was late again."]


def test_a_model_against_itself_is_zero_over_every_text(default_model):
    result = compare_texts(default_model, default_model, TEXTS[:2])
    assert result.distances.shape == (6, 12) and np.all(result.distances == 0)
    assert result.levels == ["token", "token"]


def test_the_mean_weighs_each_text_by_its_rows(default_model, zeroed_copy):
    result = compare_texts(default_model, zeroed_copy, TEXTS)
    singles = [compare_models(default_model, zeroed_copy, text) for text in TEXTS]
    rows = [int(s.rows.sum()) for s in singles]
    assert result.rows.tolist() == rows == [len(attnscope.encode(default_model, t)) for t in TEXTS]
    for got, single in zip(result.per_text, singles):
        assert single.distances is not None and np.array_equal(got, single.distances)
    expected = sum(r * s.distances for r, s in zip(rows, singles)) / sum(rows)
    assert result.distances == pytest.approx(expected, abs=1e-12)
    assert np.all(result.distances[:2] == 0)  # layers before the change are untouched in every text
    assert result.most_changed(1)[0][:2] == (2, 5) and result.most_changed(1)[0][2] > 0.1
    payload = result.to_dict()
    assert payload["texts"] == 3 and payload["rows"] == sum(rows)
    assert len(payload["distances"]) == 6 and payload["most_changed"][0]["head"] == [2, 5]


def test_bad_input_is_refused(default_model, tiny):
    with pytest.raises(InputError, match="texts must be a non-empty list of strings"):
        compare_texts(default_model, default_model, [])
    with pytest.raises(InputError, match="texts must be a non-empty list of strings, got str"):
        compare_texts(default_model, default_model, PUB)
    with pytest.raises(InputError, match=r"text 1 \('  '\): text is empty"):
        compare_texts(default_model, default_model, [PUB, "  "])
    with pytest.raises(InputError, match="stacks of the same shape: .* has 6 × 12 heads, .* 2 × 4"):
        compare_texts(default_model, tiny("bert"), [PUB])
    with pytest.raises(InputError, match="k must be a positive integer"):
        compare_texts(default_model, default_model, [PUB]).most_changed(0)
