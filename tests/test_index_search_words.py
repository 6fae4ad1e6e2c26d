"""Issue 13 items 7 and 12: matches read as the corpus writes them; a word is searched as a word; one match
per sentence; head scores as a sum or a mean, with their meaning in words; special tokens are refused.
On the real EWT dev file (its sentences hold "allergies", "mismanaged" and "siamese") and the small treebank."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

import attnscope
from attnscope.errors import InputError
from attnscope.index import Query
from attnscope.index.grouping import word_vector
from attnscope.index.query import zero_other_heads

from .conftest import PUB

SNEEZE = "I am sneezing because of my allergies today."
ALLERGIES = [9, 10, 11]  # [CLS] i am s ##nee ##zing because of my all ##er ##gies today . [SEP]


def _reads(match) -> str:
    """A match's sentence as its tokens' surface texts and spaces put it."""
    return "".join((" " if space else "") + text for text, space in zip(match.surface, match.space_before))


def _corpus_words(index, layer: int, kind: str, parts: int) -> tuple[np.ndarray, np.ndarray]:
    """Every corpus word's vector (`word_vector` of its stored token vectors) and first row, by brute force."""
    words = index.tables.words
    firsts = np.unique(words.first)
    stored = index.vector_set(kind, layer).decoded()
    vectors = np.stack([word_vector(stored[words.members(int(f))], parts) for f in firsts])
    return vectors, firsts


def test_every_context_reads_as_the_corpus_writes_it(ewt_index, default_model):
    for text, token in ((SNEEZE, 9), (PUB, 9), ("They mismanaged the siamese cat.", 2)):
        result = ewt_index.query(default_model, text, token, Query("embedding", 3))
        for m in result.matches:
            assert len(m.surface) == len(m.tokens) == len(m.words) == len(m.continues) == len(m.space_before)
            assert _reads(m) == re.sub(r"\s+", " ", m.text.strip()), m.sent_id
            for p, (surface, token_text) in enumerate(zip(m.surface, m.tokens)):
                if m.continues[p]:
                    assert not m.space_before[p] and m.words[p] == m.words[p - 1] >= 0
                assert surface.lower().startswith(token_text[:1].lower()) or not token_text.isalpha()
    found = ewt_index.query(default_model, SNEEZE, 9, Query("embedding", 3, top=5)).matches[0]  # the piece "all"
    assert found.text.startswith("I have a friend") and found.token == "all"
    assert found.surface[found.position : found.position + 3] == ["all", "er", "gies"]
    assert found.continues[found.position : found.position + 4] == [False, True, True, False]  # then ","
    assert found.surface[0] == "I" and found.tokens[0] == "i"  # the corpus's case, not the model's


@pytest.mark.parametrize("word, written", [("mismanaged", ["mis", "mana", "ged"]), ("siamese", ["siam", "ese"])])
def test_the_issues_split_words_read_as_one_word(ewt_index, default_model, word, written):
    text = f"They said {word} here."
    tokens = attnscope.encode(default_model, text)
    position = tokens.display.index(written[0])
    result = ewt_index.query(default_model, text, position, Query("embedding", 4, top=50, unit="word"))
    assert result.query_text == word and result.query_positions == list(range(position, position + len(written)))
    best = result.matches[0]
    assert [best.surface[p] for p in best.matched] == written and "".join(written) in _reads(best).lower()
    assert best.continues[best.matched[0]] is False and all(best.continues[p] for p in best.matched[1:])


def test_a_word_is_searched_as_the_mean_of_its_tokens(ewt_index, default_model):
    query = Query("embedding", 3, top=50, unit="word")
    result = ewt_index.query(default_model, SNEEZE, 10, query)  # "er", inside "allergies"
    assert (result.unit, result.query_positions, result.query_text) == ("word", ALLERGIES, "allergies")
    assert "words' hidden states" in result.score_meaning
    cap = attnscope.capture(default_model, SNEEZE, fields=["hidden_states"])
    hidden = cap.main.hidden_states[4][ALLERGIES]
    expected_query = word_vector(hidden / np.linalg.norm(hidden, axis=1, keepdims=True))
    vectors, firsts = _corpus_words(ewt_index, 3, "hidden", 1)
    scores = vectors @ expected_query
    order = np.lexsort((firsts, -scores))[:50]
    assert [m.row for m in result.matches] == firsts[order].tolist()  # the brute-force top 50 words
    np.testing.assert_allclose([m.score for m in result.matches], scores[order], atol=2e-4)
    top = result.matches[0]
    assert [top.surface[p] for p in top.matched] == ["all", "er", "gies"] and top.score > 0.85
    assert len({(m.sentence, m.words[m.position]) for m in result.matches}) == 50  # each corpus word once
    block = ewt_index.attention.weights(top.sentence)[3][:, top.matched].mean(axis=(0, 1))
    np.testing.assert_allclose(top.attention, block, atol=1e-4)  # a word's attention: the mean of its tokens' rows


def test_a_word_of_one_token_scores_as_that_token(ewt_index, default_model):
    by_token = ewt_index.query(default_model, PUB, 9, Query("embedding", 4, top=50))
    by_word = ewt_index.query(default_model, PUB, 9, Query("embedding", 4, top=50, unit="word"))
    assert by_word.query_positions == [9] and by_word.query_text == "escape"
    token_scores = {m.row: m.score for m in by_token.matches}
    single = [m for m in by_word.matches if len(m.matched) == 1 and m.row in token_scores]
    assert len(single) >= 30
    for m in single:
        assert m.score == pytest.approx(token_scores[m.row], abs=1e-5)


def test_a_head_search_of_a_word_sums_each_heads_cosine(ewt_index, default_model):
    heads = (2, 5, 7)
    result = ewt_index.query(default_model, SNEEZE, 9, Query("heads", 2, heads, top=20, unit="word"))
    cap = attnscope.capture(default_model, SNEEZE, fields=["head_outputs"])
    outputs = cap.main.head_outputs[2][:, ALLERGIES]  # (heads, 3, head_dim)
    outputs = outputs / np.linalg.norm(outputs, axis=2, keepdims=True)
    expected_query = zero_other_heads(word_vector(outputs.transpose(1, 0, 2).reshape(3, -1), 12), heads, 12)
    vectors, firsts = _corpus_words(ewt_index, 2, "heads", 12)
    scores = vectors @ expected_query
    order = np.lexsort((firsts, -scores))[:20]
    assert [m.row for m in result.matches] == firsts[order].tolist()
    np.testing.assert_allclose([m.score for m in result.matches], scores[order], atol=2e-4)
    assert result.score_max == 3 and max(m.score for m in result.matches) <= 3 + 0.01


def test_one_match_per_sentence_keeps_each_sentences_best(ewt_index, default_model):
    query = Query("heads", 3, top=5)
    plain = ewt_index.query(default_model, PUB, 1, query)  # "The": 4 of the top 5 in one sentence
    assert Counter(m.sentence for m in plain.matches).most_common(1)[0][1] == 4
    assert plain.score_meaning == "sum of 12 heads' cosines of the head embeddings at layer 3 (at most 12)"
    assert plain.score_max == 12 and 8 < plain.matches[0].score <= 12
    distinct = ewt_index.query(default_model, PUB, 1, Query("heads", 3, top=50, per_sentence=True))
    assert distinct.per_sentence and len({m.sentence for m in distinct.matches}) == 50
    cap = attnscope.capture(default_model, PUB, fields=["head_outputs"])
    heads = cap.main.head_outputs[3][:, 1]
    vector = (heads / np.linalg.norm(heads, axis=1, keepdims=True)).reshape(-1)
    scores = ewt_index.vector_set("heads", 3).decoded() @ vector
    sentence = ewt_index.tables.tokens["sentence"]
    best: dict[int, tuple[float, int]] = {}
    for row in np.argsort(-scores, kind="stable"):
        best.setdefault(int(sentence[row]), (float(scores[row]), int(row)))
    expected = sorted(best.values(), key=lambda pair: (-pair[0], pair[1]))[:50]
    assert [m.row for m in distinct.matches] == [row for _, row in expected]
    np.testing.assert_allclose([m.score for m in distinct.matches], [s for s, _ in expected], atol=2e-4)


def test_a_mean_head_score_is_the_sum_over_the_number_of_heads(ewt_index, default_model):
    summed = ewt_index.query(default_model, PUB, 9, Query("heads", 3, (1, 4, 6, 9), top=10))
    mean = ewt_index.query(default_model, PUB, 9, Query("heads", 3, (1, 4, 6, 9), top=10, score="mean"))
    assert [m.row for m in mean.matches] == [m.row for m in summed.matches]
    np.testing.assert_allclose([m.score for m in mean.matches], [m.score / 4 for m in summed.matches], rtol=1e-6)
    assert (summed.score_max, mean.score_max) == (4, 1)
    assert mean.score_meaning == "mean of 4 heads' cosines of the head embeddings at layer 3 (their sum / 4, at most 1)"
    one = ewt_index.query(default_model, PUB, 9, Query("heads", 3, (6,), top=3))
    assert one.score_meaning == "cosine of head 6's part of the head embeddings at layer 3 (at most 1)"
    by_embedding = ewt_index.query(default_model, PUB, 9, Query("embedding", 3, top=3))
    assert by_embedding.score_meaning == "cosine of the hidden states after layer 3 (at most 1)"


@pytest.mark.parametrize("token, unit, name", [(0, "token", "[CLS]"), (6, "token", "[SEP]"), (0, "word", "[CLS]")])
def test_special_tokens_are_refused_with_the_reason(small_index, default_model, token, unit, name):
    with pytest.raises(
        InputError,
        match=re.escape(f"token {token} is the special token '{name}': special tokens are not in the corpus index"),
    ):
        small_index.query(default_model, "The pub was loud.", token, Query("embedding", 1, unit=unit))


def test_the_input_position_opens_the_match_where_the_model_reads_it(small_index, default_model):
    result = small_index.query(default_model, "The pub was loud.", 2, Query("embedding", 5, top=10))
    for m in result.matches:
        tokens = attnscope.encode(default_model, m.text)
        assert tokens.display[m.input_position] == m.token
        assert m.input_position == m.position + 1  # [CLS] first


@pytest.mark.parametrize(
    "query, message",
    [
        (Query("embedding", 1, unit="sentence"), "search unit 'sentence' is unknown: use one of token, word"),
        (Query("heads", 1, score="max"), "score 'max' is unknown: use one of sum, mean"),
    ],
)
def test_bad_units_and_scores_say_what_is_allowed(small_index, default_model, query, message):
    with pytest.raises(InputError, match=message):
        small_index.query(default_model, "Dogs bark.", 1, query)
