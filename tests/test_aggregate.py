"""Hand-computed checks of the attention aggregations (analysis/aggregate.py)."""

import numpy as np
import pytest

from attnscope.analysis.aggregate import merge_words


def test_merge_words_sums_columns_and_averages_rows() -> None:
    # tokens: [CLS] play ##ing well [SEP]; words: 0 = "playing" (tokens 1, 2), 1 = "well" (token 3)
    w = np.array(
        [
            [0.5, 0.1, 0.1, 0.1, 0.2],
            [0.2, 0.2, 0.4, 0.1, 0.1],
            [0.0, 0.6, 0.0, 0.4, 0.0],
            [0.1, 0.3, 0.3, 0.2, 0.1],
            [0.2, 0.2, 0.2, 0.2, 0.2],
        ]
    )
    merged = merge_words(w[None], [None, 0, 0, 1, None])
    assert merged.unit_word == [None, 0, 1, None]
    assert merged.unit_tokens == [[0], [1, 2], [3], [4]]
    expected = np.array(
        [
            [0.5, 0.2, 0.1, 0.2],
            [0.1, 0.6, 0.25, 0.05],  # mean of rows 1 and 2: (0.2+0.0)/2, (0.6+0.6)/2, (0.1+0.4)/2, (0.1+0)/2
            [0.1, 0.6, 0.2, 0.1],
            [0.2, 0.4, 0.2, 0.2],
        ]
    )
    np.testing.assert_allclose(merged.weights[0], expected)
    np.testing.assert_allclose(merged.weights.sum(axis=-1), 1.0)
    assert merged.unit_of_word(1) == 2


def test_merge_words_rejects_a_mismatched_shape() -> None:
    with pytest.raises(ValueError, match=r"end in \(3, 3\)"):
        merge_words(np.zeros((2, 4, 4)), [None, 0, None])
