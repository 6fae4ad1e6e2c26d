"""A mask token typed in the text (``[MASK]``, ``<mask>``), as BertViz and exBERT users write it, is a masked
position: in ``tokens.masked``, not special, with its offsets, predictions at it, the masking caveat where
the model was not trained on masks; in Python, the CLI and the API alike."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

import attnscope
from attnscope.errors import MaskingWarning
from attnscope.index import Query

from .server_fixtures import SMALL, client, state  # noqa: F401 - fixtures

# every tiny architecture whose tokenizer has a mask token, and how that token is spelled
MASKED_LMS = {
    "bert": "[MASK]",
    "distilbert": "[MASK]",
    "electra": "[MASK]",
    "albert": "[MASK]",
    "roberta": "<mask>",
    "bart": "<mask>",
}


@pytest.mark.parametrize("arch", sorted(MASKED_LMS))
def test_a_typed_mask_token_is_a_masked_position_with_its_offsets(tiny, arch):
    handle = tiny(arch)
    mask = MASKED_LMS[arch]
    assert handle.mask_token == mask
    text = f"The {mask} ran home."
    tokens = attnscope.encode(handle, text)
    position = tokens.display.index(mask)
    assert tokens.masked == (position,)
    assert tokens.special[position] is False and tokens.ids[position] == handle.tokenizer.mask_token_id
    assert tokens.offsets[position] == (4, 4 + len(mask)) and text[4 : 4 + len(mask)] == mask
    assert tokens.to_dict()["masked"] == [position]
    assert attnscope.encode(handle, "The dog ran home.").masked == ()


def test_typed_masks_and_masks_by_position_combine(default_model):
    tokens = attnscope.encode(default_model, "[MASK] dog ran to [MASK].", mask=[3])
    assert tokens.display == ["[CLS]", "[MASK]", "dog", "[MASK]", "to", "[MASK]", ".", "[SEP]"]
    assert tokens.masked == (1, 3, 5) and tokens.special == [True] + [False] * 6 + [True]
    assert tokens.original == {3: "ran"}  # a typed mask hides nothing
    assert tokens.offsets[1] == (0, 6) and tokens.offsets[5] == (18, 24)


def test_a_typed_mask_gets_predictions_and_no_caveat_on_a_masked_lm(tiny):
    handle = tiny("bert")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        typed = attnscope.capture(handle, "The [MASK] ran home.", top_k=5)
    by_position = attnscope.capture(handle, "The dog ran home.", mask=[2], top_k=5)
    assert typed.tokens.masked == (2,) and typed.masking_caveat is None
    assert typed.predictions.mode == "masked"
    assert [t for t, _ in typed.top_k(2)] == [t for t, _ in by_position.top_k(2)]  # the same input ids


def test_a_typed_mask_on_a_model_without_masked_lm_head_carries_the_caveat(default_model):
    with pytest.warns(MaskingWarning) as record:
        cap = attnscope.capture(default_model, "The [MASK] ran.")
    assert cap.masking_caveat == attnscope.masking_caveat(default_model) == str(record[0].message)


def test_searching_a_typed_mask_searches_the_masked_position(small_index, default_model):
    """The field report: `attnscope search "The [MASK] ran." --index ewt --token 2 --layer 3` was refused
    as a special token."""
    with pytest.warns(MaskingWarning):
        typed = small_index.query(default_model, "The [MASK] ran.", 2, Query("embedding", 3, top=5))
    by_position = small_index.query(
        default_model, "The dog ran.", 2, Query("embedding", 3, top=5), mask=[2], warn=False
    )
    assert typed.token_text == "[MASK]" and typed.query_positions == [2]
    assert [(m.sentence, m.position) for m in typed.matches] == [(m.sentence, m.position) for m in by_position.matches]
    assert [m.score for m in typed.matches] == pytest.approx([m.score for m in by_position.matches], abs=1e-6)


def test_the_cli_searches_a_typed_mask_and_notes_the_caveat(small_index):
    command = [
        sys.executable,
        "-m",
        "attnscope.cli",
        "search",
        "The [MASK] ran.",
        "--index",
        str(small_index.directory),
        "--token",
        "2",
        "--layer",
        "3",
        "--top",
        "3",
        "--json",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"), timeout=300
    )
    assert result.returncode == 0, result.stderr
    note = " ".join(result.stderr.split())
    assert note.startswith(
        "note: model 'sentence-transformers/all-MiniLM-L6-v2' has no masked-language-model "
        "head, so its mask token [MASK] was not trained to stand for a word"
    )
    assert "special token" not in result.stderr


def test_the_api_treats_a_typed_mask_as_masked(client, default_model, tiny):  # noqa: F811 - the fixture
    body = client.post("/api/attention", json={"model": "default", "text": "The [MASK] ran."}).json()
    tokens = body["tokens"]
    assert (tokens["masked"], tokens["special"][2], tokens["offsets"][2]) == ([2], False, [4, 10])
    assert body["payload"]["header"]["sequences"]["encoder"]["masked"] == [2]  # what the head view reads
    assert body["masking_note"] == attnscope.masking_caveat(default_model)
    plain = client.post("/api/attention", json={"model": "default", "text": "The dog ran."}).json()
    assert plain["masking_note"] is None
    bert = client.post("/api/predictions", json={"model": "tiny-bert", "text": "The [MASK] ran.", "position": 2}).json()
    assert (bert["token"], bert["mode"], bert["masking_note"]) == ("[MASK]", "masked", None)
    found = client.post("/api/search", json={"corpus": SMALL, "text": "The [MASK] ran.", "token": 2, "layer": 3})
    assert found.status_code == 200, found.text
    assert found.json()["token_text"] == "[MASK]" and found.json()["matches"]
