"""A link to the explorer app that asks for what cannot be shown, in Chromium against a real `attnscope serve`:
each parameter that was dropped is named in the page's notice with the reason, the rest of the link still applies,
the URL is written again without what was dropped, and nothing is asked of the server that it would refuse."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

# app: the page fixture, here on this module's server
from .test_app import AppPage, app, open_app  # noqa: F401

PUB = "The girl ran to a local pub to escape the din of her city."  # 17 tokens: [CLS] … . [SEP]
DEFAULT = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def server(small_app):
    return small_app


def notice(app: AppPage) -> dict[str, str]:
    """The notice's items by parameter (empty when the notice is hidden)."""
    if app.page.is_hidden("#link-notice"):
        return {}
    assert app.page.get_attribute("#link-notice", "role") == "status"
    items = app.page.eval_on_selector_all("#link-dropped li", "ls => ls.map(l => [l.dataset.parameter, l.textContent])")
    assert len({name for name, _ in items}) == len(items), items
    return dict(items)


def url_state(app: AppPage) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(app.page.url).query, keep_blank_values=True).items()}


def view(app: AppPage) -> dict:
    return app.page.eval_on_selector(
        "#attention .attnscope-hv",
        """root => ({
        layer: root.dataset.layer, heads: root.dataset.heads, token: root.dataset.pinned.replace('query:', ''),
        masked: [...document.querySelectorAll('.attnscope-hv-queries .attnscope-hv-masked')].map(e => e.dataset.index),
        tokens: document.querySelectorAll('.attnscope-hv-queries .attnscope-hv-token').length,
        model: document.getElementById('model').value })""",
    )


def test_a_model_that_is_not_served_is_named_and_the_rest_of_the_link_applies(app, tiny):
    open_app(app, "?" + urlencode({"model": "bert-large-cased", "text": PUB, "layer": "3", "token": "5"}))
    assert notice(app) == {
        "model": "model=bert-large-cased was ignored: it is not served here (this server serves "
        f"{DEFAULT}, {tiny('bert').label}); showing {DEFAULT}"
    }
    assert view(app) == {
        "layer": "3",
        "heads": ",".join(map(str, range(12))),
        "token": "5",
        "masked": [],
        "tokens": 17,
        "model": DEFAULT,
    }
    assert url_state(app) == {"model": DEFAULT, "corpus": "small", "text": PUB, "layer": "3", "token": "5"}
    app.page.click("#link-notice-close")
    assert app.page.is_hidden("#link-notice") and notice(app) == {}
    assert app.errors == []


def test_a_mask_and_a_layer_out_of_range_are_dropped_and_the_view_is_drawn(app):
    open_app(app, "?" + urlencode({"text": PUB, "mask": "99", "layer": "40"}))
    assert notice(app) == {
        "layer": "layer=40 was ignored: this model has layers 0-5",
        "mask": "mask=99 was ignored: position 99: this input has tokens 0-16",
    }
    assert view(app) == {
        "layer": "0",
        "heads": ",".join(map(str, range(12))),
        "token": "",
        "masked": [],
        "tokens": 17,
        "model": DEFAULT,
    }
    assert int(app.page.get_attribute("#attention .attnscope-hv", "data-lines")) > 0
    assert "mask" not in url_state(app) and url_state(app)["layer"] == "0"
    assert app.page.inner_text("#status") == ""
    assert app.errors == []  # the mask was checked against the input's tokens before it was sent: no request failed


def test_malformed_values_are_each_named_and_the_valid_ones_kept(app):
    query = {
        "text": PUB,
        "layer": "two",
        "heads": "1,x",
        "threshold": "7",
        "show": "bogus",
        "words": "yes",
        "special": "1",
        "span": "9",
        "search": "sideways",
        "atlas": "yes",
        "token": "5",
        "mask": "3;4",
        "colour": "red",
        "top": "0",
        "filter": "upos",
        "per": "word",
        "scoring": "max",
        "rerank": "3",
        "pairs": "AC",
        "gen": "0",
        "seed": "-1",
    }
    open_app(app, "?" + urlencode(query))
    dropped = notice(app)
    assert dropped == {
        "colour": "colour=red was ignored: the app reads only model, corpus, text, pair, mask, layer, heads, show, "
        "words, top_share, special, token, search, field, cols, span, atlas, score, top, filter, per, scoring, "
        "rerank, pairs, gen, seed, compare",
        "mask": "mask=3;4 was ignored: not a list of token positions (write them as 1,4,7)",
        "heads": "heads=1,x was ignored: not a list of head numbers (write them as 1,4,7)",
        "layer": "layer=two was ignored: not a layer number (0, 1, 2, …)",
        "show": "show=bogus was ignored: the attention view shows raw, rollout, value_norm, value_norm_sum",
        "words": "words=yes was ignored: write words=on to turn it on, or leave it out",
        "threshold": "threshold=7 was ignored: the top share is a share of attention above 0 and at most 1 (e.g. 0.9)",
        "special": "special=1 was ignored: write special=hide to turn it on, or leave it out",
        "search": "search=sideways was ignored: a search is by embedding or by heads "
        "(search=embedding or search=heads)",
        "span": "span=9 was ignored: the columns reach 0 to 5 tokens either side of a match",
        "atlas": "atlas=yes was ignored: write atlas=open to turn it on, or leave it out",
        "top": "top=0 was ignored: the number of matches is 1 to 200",
        "filter": "filter=upos was ignored: Filter “upos”: write FIELD=VALUE[,VALUE…], e.g. upos=NOUN,PROPN deprel=obj",
        "per": "per=word was ignored: write per=sentence for one match per sentence, or leave it out",
        "scoring": "scoring=max was ignored: a head search's score is sum or mean",
        "rerank": "rerank=3 was ignored: re-ranking is 1, 2, 4, 8, 16 (1: off), or left out for the corpus's default",
        "pairs": "pairs=AC was ignored: the sentence filter is one of all, AA, BB, AB, BA",
        "gen": "gen=0 was ignored: the tokens generated after the text are 1 to 200",
        "seed": "seed=-1 was ignored: a seed needs tokens generated (gen=…)",
    }
    assert view(app)["token"] == "5" and view(app)["layer"] == "0" and view(app)["masked"] == []
    assert app.page.input_value("#top-share") == "90" and not app.page.is_checked("#words")
    assert url_state(app) == {"model": DEFAULT, "corpus": "small", "text": PUB, "layer": "0", "token": "5"}
    assert app.errors == []


def test_out_of_range_heads_token_and_masks_and_unknown_corpus_names_are_dropped(app):
    query = {
        "text": PUB,
        "heads": "2,12,40",
        "token": "300",
        "mask": "0,3",
        "corpus": "ewt",
        "field": "zzz",
        "search": "embedding",
        "layer": "2",
    }
    open_app(app, "?" + urlencode(query))
    app.page.wait_for_selector(".attnscope-hv-queries .attnscope-hv-masked")
    assert notice(app) == {
        "corpus": f"corpus=ewt was ignored: it is not served here (corpora of {DEFAULT}: small)",
        "heads": "heads=2,12,40 was ignored: heads 12, 40: this model has heads 0-11",
        "field": "field=zzz was ignored: the corpus has the fields upos, lemma, deprel",
        "token": "token=300 was ignored: this input has tokens 0-16",
        "search": "search=embedding was ignored: a search needs a token to search for (token=…)",
        "mask": "mask=0,3 was ignored: position 0 is the special token [CLS] (only ordinary tokens can be masked)",
    }
    assert view(app) == {"layer": "2", "heads": "2", "token": "", "masked": ["3"], "tokens": 17, "model": DEFAULT}
    assert app.page.get_attribute("#results", "data-state") == "idle"
    assert url_state(app) == {"model": DEFAULT, "corpus": "small", "text": PUB, "mask": "3", "layer": "2", "heads": "2"}
    assert app.errors == []


def test_a_text_longer_than_the_app_takes_is_dropped_for_the_example(app):
    long = "word " * 6001  # 30,005 characters: the page's inputs and the API take 30,000
    open_app(app, "?" + urlencode({"text": long, "pair": "She left.", "layer": "2"}))
    assert notice(app) == {
        "text": "text=word word word word word word word wo… was ignored: it is 30,005 characters "
        "long; the most is 30,000"
    }
    assert app.page.input_value("#text") == "The girl ran to a local pub to escape the din of her city."
    assert app.page.input_value("#pair") == "She left." and view(app)["layer"] == "2"
    assert "word" not in url_state(app)["text"]
    assert app.errors == []


def test_an_unknown_atlas_score_is_named_once_the_atlas_is_loaded(app):
    open_app(app, "?" + urlencode({"text": PUB, "atlas": "open", "score": "bogus"}))
    app.page.wait_for_selector("#atlas[data-state=ready] .attnscope-atlas[data-ready=true]", timeout=300_000)
    assert notice(app) == {
        "score": "score=bogus was ignored: the head atlas has no score of that name (its menu lists them)"
    }
    assert app.page.input_value(".attnscope-atlas-score") == "previous"
    assert "score" not in url_state(app) and url_state(app)["atlas"] == "open"
    assert app.errors == []


def test_a_link_the_app_wrote_itself_is_taken_whole(app):
    query = {
        "text": PUB,
        "pair": "She left.",
        "mask": "9",
        "layer": "3",
        "heads": "2,7",
        "show": "value_norm",
        "words": "on",
        "top_share": "0.5",
        "special": "hide",
        "token": "9",
        "search": "heads",
        "field": "deprel",
        "cols": "upos",
        "span": "2",
    }
    open_app(app, "?" + urlencode(query))
    app.page.wait_for_function("() => document.getElementById('results').dataset.state === 'ready'")
    assert notice(app) == {}
    assert url_state(app) == {"model": DEFAULT, "corpus": "small", **query}
    assert app.errors == []


def test_a_filter_the_corpus_cannot_take_and_a_search_for_a_special_token_are_named(app):
    open_app(app, "?" + urlencode({"text": PUB, "token": "3", "search": "embedding", "filter": "nope=X upos=VERB"}))
    app.page.wait_for_selector("#results[data-state=ready]")
    assert notice(app) == {
        "filter": "filter=nope=X upos=VERB was ignored: cannot filter on “nope”: corpus small has "
        "the fields upos, lemma, deprel"
    }
    assert url_state(app) == {
        "model": DEFAULT,
        "corpus": "small",
        "text": PUB,
        "layer": "0",
        "token": "3",
        "search": "embedding",
    }  # the rest applies: the search runs, unfiltered
    assert app.page.input_value("#search-filter") == "" and app.page.locator(".as-match").count() > 0

    open_app(app, "?" + urlencode({"text": PUB, "token": "0", "search": "embedding", "filter": "UPOS=VERB"}))
    assert notice(app) == {
        "filter": "filter=UPOS=VERB was ignored: cannot filter on “UPOS”: corpus small has the fields upos, lemma, "
        "deprel (names are case-sensitive: did you mean “upos”?)",
        "search": "search=embedding was ignored: token 0 is the special token [CLS], which the corpus index does not "
        "hold",
    }
    assert view(app)["token"] == "0" and app.page.get_attribute("#results", "data-state") == "idle"
    assert url_state(app) == {"model": DEFAULT, "corpus": "small", "text": PUB, "layer": "0", "token": "0"}
    assert app.page.inner_text("#status") == "" and app.errors == []  # nothing was sent that the server refuses


def test_an_empty_text_and_a_hidden_selected_special_token_are_named(app):
    open_app(app, "?" + urlencode({"text": "", "layer": "1"}))
    assert notice(app) == {"text": "text= was ignored: the text is empty; showing the example sentence"}
    assert app.page.input_value("#text") == PUB and url_state(app)["text"] == PUB and view(app)["layer"] == "1"

    open_app(app, "?" + urlencode({"text": PUB, "special": "hide", "token": "0", "search": "heads"}))
    assert notice(app) == {
        "token": "token=0 was ignored: it is the special token [CLS], and special tokens are hidden (special=hide)",
        "search": "search=heads was ignored: a search needs a token to search for (token=…)",
    }
    assert view(app)["token"] == "" and url_state(app) == {
        "model": DEFAULT,
        "corpus": "small",
        "text": PUB,
        "layer": "0",
        "special": "hide",
    }
    assert app.errors == []


def test_heads_all_out_of_range_leave_every_head_and_a_pair_filter_needs_a_second_sentence(app):
    open_app(app, "?" + urlencode({"text": PUB, "heads": "99", "pairs": "AB"}))
    assert notice(app) == {
        "heads": "heads=99 was ignored: head 99: this model has heads 0-11",
        "pairs": "pairs=AB was ignored: the sentence filter needs a second sentence (pair=…)",
    }
    assert view(app)["heads"] == ",".join(map(str, range(12)))  # as without the parameter: every head, drawn
    assert int(app.page.get_attribute("#attention .attnscope-hv", "data-lines")) > 0
    assert "heads" not in url_state(app) and "pairs" not in url_state(app)
    assert app.page.inner_text("#attention-empty") == ""
    assert app.errors == []


def test_a_blank_sentence_is_refused_in_words_and_the_view_kept(app):
    open_app(app, "?" + urlencode({"text": PUB}))
    lines = app.page.get_attribute("#attention .attnscope-hv", "data-lines")
    app.page.fill("#text", "   ")
    app.page.click("#run")
    assert app.page.inner_text("#status") == "The sentence is empty: type a sentence to see its attention."
    assert url_state(app)["text"] == PUB  # nothing changed: the shown view is still the sentence's
    assert app.page.get_attribute("#attention .attnscope-hv", "data-lines") == lines
    assert app.errors == []
