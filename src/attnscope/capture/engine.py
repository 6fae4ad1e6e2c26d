"""Running a model on inputs and assembling what the recorder saw into `Capture` objects."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InputError, MaskingWarning
from .from_ids import tokens_from_ids
from .inputs import Tokens, apply_mask, decoder_tokens, display_forms, encode, masking_caveat, special_token_ids
from .loading import ModelHandle, is_cross_attention
from .projection import ProjectionNotFound, stack_projection
from .recorder import MODES, LayerCall, recording
from .result import ALL_FIELDS, ATTENTION_FIELDS, DEFAULT_FIELDS, AttentionStack, Capture, Predictions
from .stacks import by_role, stacks_from_calls, stacks_from_outputs, to_numpy

DTYPES = {"float32": torch.float32, "float16": torch.float16}
CAPTURE_MODES = ("auto", *MODES)
"""What ``capture(..., attention=...)`` accepts: "auto" picks one of the recorder's `MODES` per batch."""
EAGER_LIMIT_BYTES = 2**30
"""With ``attention="auto"``, a batch whose dense float32 attention would take more than this is captured
on demand (1 GiB: SmolLM2-135M past about 990 tokens, a 12 × 12-head BERT past about 1,300)."""
_OUTSIDE_INTERFACE = (
    "the model computes attention in its own modules, not through transformers' AttentionInterface (Bloom, MPT "
    "and Falcon with their ALiBi, XLNet, XLM): its weights come from output_attentions and are held dense"
)


@dataclass(frozen=True)
class CaptureInput:
    """One input of a batch: a text, an optional second text (sentence B), an optional decoder
    target (encoder-decoders), and token positions to mask. ``tokens`` is the text already tokenised
    (`encode`, masks applied) by a caller that needed its tokens first: it is used instead of
    tokenising the text again.

    Or token ids taken as given, never re-tokenised (`from_ids.tokens_from_ids`): ``input_ids`` in
    place of ``text``, ``input_ids_pair`` of ``text_pair``, ``target_ids`` of ``target``.
    """

    text: str | None = None
    text_pair: str | None = None
    target: str | None = None
    mask: tuple[int, ...] = ()
    tokens: Tokens | None = None
    input_ids: Sequence[int] | None = None
    input_ids_pair: Sequence[int] | None = None
    target_ids: Sequence[int] | None = None


InputLike = str | tuple | CaptureInput


def capture(
    handle: ModelHandle,
    text: str | None = None,
    text_pair: str | None = None,
    *,
    target: str | None = None,
    input_ids: Sequence[int] | None = None,
    input_ids_pair: Sequence[int] | None = None,
    target_ids: Sequence[int] | None = None,
    mask: Sequence[int] = (),
    fields: Iterable[str] | str = DEFAULT_FIELDS,
    dtype: str = "float32",
    truncate: bool = False,
    top_k: int = 10,
    warn: bool = True,
    tokens: Tokens | None = None,
    attention: str = "auto",
) -> Capture:
    """Run ``handle``'s model on one text (or text pair) and return what every attention head did.

    ``fields`` picks what is kept: any of ``ALL_FIELDS`` or ``"all"``. ``mask`` lists positions to
    replace with the mask token. ``target`` is the decoder's input for encoder-decoder models.
    ``top_k`` predictions are kept at every position when the model has a language-model head.
    Masking with a model whose mask token was never trained (no masked-LM head, or a causal decoder)
    sets ``Capture.masking_caveat`` and, unless ``warn`` is False, issues a `MaskingWarning` saying so
    (callers that show the caveat themselves, as the app and the CLI do, pass ``warn=False``).
    ``tokens``: the text as `encode` tokenised it (with ``mask`` applied), for a caller that tokenised it
    first (to check positions against it); the text is then not tokenised again.

    Exact ids instead of text: ``input_ids`` (in place of ``text``), ``input_ids_pair`` (of
    ``text_pair``: sentence B, token type 1) and ``target_ids`` (of ``target``: an encoder-decoder's
    decoder input, its start token included) are the model's input exactly as given, never
    re-tokenised: special tokens are not added (include ``[CLS]``/``<s>`` where the model wants them),
    and ``capture.tokens.ids`` equals ``input_ids`` (+ ``input_ids_pair``). Lists of ints, 1-D tensors
    or arrays, or a batch of one. Texts, offsets and words are derived from the ids (see
    `from_ids`). Ids that are not ints, outside the vocabulary, empty or longer than the model's
    positions raise `InputError` naming the position and the allowed range.

    ``attention`` says how attention weights are captured (see `recorder`):

    - ``"auto"`` (default): ``"eager"`` unless the batch's dense attention (every stack's layers × heads ×
      query × key float32 weights) would take more than `EAGER_LIMIT_BYTES`, then ``"on_demand"``;
      ``Capture.attention_mode`` says which ran.
    - ``"eager"``: the model runs its family's eager attention and every weight is kept,
      ``cap.attentions`` a (layers, heads, query, key) array (memory quadratic in tokens).
    - ``"on_demand"``: the model runs SDPA attention (its fastest exact path), and the capture keeps the
      queries and keys after rotary embeddings, scales, mask structure and position biases per head (T5's
      buckets, ALiBi), linear in tokens; ``cap.attentions`` (each stack's ``attentions``) is a
      `LazyAttention` that computes any layer, row block or tile exactly when asked (float32), and
      ``np.asarray`` of it when it fits its memory limit. Modules SDPA cannot compute exactly (softcap,
      attention sinks, a ``position_bias`` argument, masks that are not causal/sliding/padding patterns)
      run eager attention; ``Capture.eager_modules`` names them and why (and a model outside the attention
      interface, whose weights are then held dense). Other fields are as in eager mode (``allowed``
      rebuilt from the mask's structure).
    """
    item = CaptureInput(text, text_pair, target, tuple(mask), tokens, input_ids, input_ids_pair, target_ids)
    results = _capture_batch(
        handle, [item], fields=fields, dtype=dtype, truncate=truncate, top_k=top_k, attention=attention
    )
    if warn:
        _warn_masking(results)
    return results[0]


def capture_batch(
    handle: ModelHandle,
    inputs: Sequence[InputLike],
    *,
    fields: Iterable[str] | str = DEFAULT_FIELDS,
    dtype: str = "float32",
    truncate: bool = False,
    top_k: int = 10,
    warn: bool = True,
    attention: str = "auto",
) -> list[Capture]:
    """Capture several inputs in one padded forward pass; each result equals a single-input capture
    (``warn`` and ``attention`` as in `capture`)."""
    results = _capture_batch(
        handle, inputs, fields=fields, dtype=dtype, truncate=truncate, top_k=top_k, attention=attention
    )
    if warn:
        _warn_masking(results)
    return results


def _warn_masking(results: list[Capture]) -> None:
    """One `MaskingWarning` for a batch in which a masked input carries a caveat, pointing at the caller."""
    caveat = next((c.masking_caveat for c in results if c.masking_caveat), None)
    if caveat:
        warnings.warn(caveat, MaskingWarning, stacklevel=3)


def _capture_batch(
    handle: ModelHandle,
    inputs: Sequence[InputLike],
    *,
    fields: Iterable[str] | str,
    dtype: str,
    truncate: bool,
    top_k: int,
    attention: str = "eager",
) -> list[Capture]:
    items = [_as_input(x) for x in inputs]
    if not items:
        raise InputError("no inputs given: pass at least one text")
    wanted = check_capture_options(fields, dtype)
    if not isinstance(top_k, int) or top_k < 0:
        raise InputError(f"top_k must be a non-negative integer, got {top_k!r}")
    check_attention_mode(attention)
    for it in items:
        _check_input(handle, it)
    encoded = [_tokens_of(handle, it, truncate) for it in items]
    decoded = [_decoder_tokens_of(handle, it) for it in items] if handle.kind == "encoder-decoder" else None
    if attention == "auto":
        attention = "on_demand" if dense_attention_bytes(handle, encoded, decoded) > EAGER_LIMIT_BYTES else "eager"
    outputs, calls = run_batch(handle, encoded, decoded, wanted, attention=attention, logits=top_k > 0)
    return captures_from_run(handle, encoded, decoded, outputs, calls, wanted, dtype, top_k, attention)


def captures_from_run(
    handle: ModelHandle,
    encoded: list[Tokens],
    decoded: list[Tokens] | None,
    outputs: Any,
    calls: list[LayerCall],
    wanted: set[str],
    dtype: str,
    top_k: int,
    attention: str,
) -> list[Capture]:
    """Each input's `Capture` from one run: the model's ``outputs`` (``logits`` (batch, tokens, vocabulary) read
    when ``top_k`` > 0, ``hidden_states`` when wanted, ``output_attentions`` weights when ``calls`` is empty) and
    the recorded layer ``calls`` (`run_batch`, or `continuation` joining a generation's passes), in ``attention``
    mode ("eager" or "on_demand")."""
    missing: dict[str, str] = {}
    if not calls and wanted & set(ATTENTION_FIELDS):
        missing = {
            f: f"{type(handle.model).__name__} does not run attention through transformers' AttentionInterface: "
            "only attention weights and hidden states can be captured"
            for f in sorted(wanted & set(ATTENTION_FIELDS) - {"attentions"})
        }
    eager_modules = {c.module_name: c.eager_reason for c in calls if c.eager_reason}
    if attention == "on_demand" and not calls and "attentions" in wanted:
        eager_modules = {type(handle.model).__name__: _OUTSIDE_INTERFACE}
    torch_dtype = DTYPES[dtype]
    projections = _output_projections(handle, calls, torch_dtype, missing) if "values" in wanted else {}
    results = []
    caveat = masking_caveat(handle) if any(t.masked for t in encoded) else None
    for b, tokens in enumerate(encoded):
        dec = decoded[b] if decoded else None
        if calls:
            stacks = stacks_from_calls(handle, calls, b, tokens, dec, wanted, torch_dtype)
            for role, projection in projections.items():
                stacks[role].output_projection = projection
        else:
            stacks = stacks_from_outputs(handle, outputs, b, tokens, dec, wanted, torch_dtype)
        _add_hidden_states(handle, stacks, outputs, b, tokens, dec, wanted, torch_dtype)
        predictions = _predictions(handle, outputs, b, dec or tokens, top_k) if top_k else None
        results.append(
            Capture(
                handle.name,
                handle.kind,
                tokens,
                stacks,
                dec,
                predictions,
                dict(missing),
                dtype,
                handle.has_lm_head,
                caveat if tokens.masked else None,
                attention_mode=attention,
                eager_modules=dict(eager_modules),
            )
        )
    return results


def dense_attention_bytes(handle: ModelHandle, encoded: list[Tokens], decoded: list[Tokens] | None) -> int:
    """Bytes the float32 weights of every stack would take for this right-padded batch:
    ``batch × Σ layers × heads × query × key × 4`` (cross attention: decoder queries on encoder keys)."""
    longest = max(len(t.ids) for t in encoded)
    target = max(len(t.ids) for t in decoded) if decoded else longest
    sizes = {"encoder": (longest, longest), "decoder": (target, target), "cross": (target, longest)}
    per_input = sum(s.layers * s.heads * sizes[role][0] * sizes[role][1] for role, s in handle.stacks.items())
    return len(encoded) * per_input * 4


def _check_input(handle: ModelHandle, item: CaptureInput) -> None:
    """Text or ids, not both; a pair or a target of the same kind; a target only for encoder-decoders."""
    if item.input_ids is not None:
        if item.text is not None or item.text_pair is not None or item.tokens is not None:
            raise InputError(
                "pass either text (and text_pair) or input_ids (and input_ids_pair), not both: input_ids "
                "are the model's input as given"
            )
    elif item.input_ids_pair is not None:
        raise InputError("input_ids_pair is sentence B after input_ids: pass input_ids too, or text_pair with text")
    elif item.text is None:
        raise InputError("no input given: pass a text, or input_ids (token ids taken as given)")
    if item.target is not None and item.target_ids is not None:
        raise InputError("pass either target (a text) or target_ids (the decoder's input ids as given), not both")
    targets = [name for name in ("target", "target_ids") if getattr(item, name) is not None]
    if handle.kind != "encoder-decoder" and targets:
        only = "a decoder-only" if handle.kind == "decoder" else "an encoder-only"
        reads = "input_ids (and input_ids_pair)" if item.input_ids is not None else "the text (and text_pair)"
        raise InputError(
            f"{targets[0]} is the decoder's input of an encoder-decoder model; model {handle.name!r} is {only} "
            f"model, which reads only {reads}: leave {targets[0]} out"
        )


def _decoder_tokens_of(handle: ModelHandle, item: CaptureInput) -> Tokens:
    """An encoder-decoder's decoder input: ``target_ids`` as given, or the start token and the target's tokens."""
    if item.target_ids is not None:
        return tokens_from_ids(handle, item.target_ids, what="target_ids")
    return decoder_tokens(handle, item.target)


def _tokens_of(handle: ModelHandle, item: CaptureInput, truncate: bool) -> Tokens:
    """The input's tokens: ``item.tokens`` when the caller tokenised it already (checked to be of the
    same texts, with the masks asked for), the ids' when ids were given, else `encode`'s."""
    if item.input_ids is not None:
        tokens = tokens_from_ids(handle, item.input_ids, item.input_ids_pair)
        return apply_mask(tokens, item.mask, handle) if item.mask else tokens
    assert item.text is not None  # _check_input refused an input without text or ids
    if item.tokens is None:
        return encode(handle, item.text, item.text_pair, mask=item.mask, truncate=truncate)
    texts = (item.text,) if item.text_pair is None else (item.text, item.text_pair)
    if tuple(item.tokens.texts) != texts:
        raise InputError(
            "tokens were made from other texts than the text and text_pair given: pass the Tokens "
            "that encode(handle, text, text_pair) returned for them"
        )
    if not set(item.mask) <= set(item.tokens.masked):
        raise InputError(
            f"tokens do not have the mask positions {list(item.mask)} applied: pass mask to encode, then those tokens"
        )
    return item.tokens


def run_batch(
    handle: ModelHandle,
    encoded: list[Tokens],
    decoded: list[Tokens] | None,
    wanted: set[str],
    *,
    attention: str = "eager",
    logits: bool = True,
) -> tuple[Any, list[LayerCall]]:
    """One right-padded forward pass over tokenised inputs with the recorder on (in ``attention`` mode).

    ``logits=False`` says no prediction is read from the outputs: a causal language model then computes
    its head's logits for the last position only (``logits_to_keep=1``, where its forward takes it), not a
    (tokens × vocabulary) array (6 GiB for SmolLM2 at 32,768 tokens).

    Returns the model's outputs (hidden states when ``wanted`` has them) and the recorded layer calls,
    whose tensors are batch-first (see `LayerCall`). Models outside the attention interface record no
    calls; their outputs then carry ``output_attentions`` weights when attention fields are wanted.
    """
    kwargs = _model_inputs(handle, encoded, decoded)
    kwargs["output_hidden_states"] = "hidden_states" in wanted
    if not logits and "logits_to_keep" in inspect.signature(handle.model.forward).parameters:
        kwargs["logits_to_keep"] = 1
    if handle.kind != "encoder":
        kwargs["use_cache"] = False
    model = handle.model
    with handle.lock, torch.inference_mode():
        with recording(model, wanted, _role_function(handle), attention) as recorder:
            outputs = model(**kwargs)
        if not recorder.calls and wanted & set(ATTENTION_FIELDS):
            outputs = model(**kwargs, output_attentions=True)
    return outputs, recorder.calls


def _as_input(x: InputLike) -> CaptureInput:
    if isinstance(x, CaptureInput):
        return x
    if isinstance(x, str):
        return CaptureInput(x)
    if isinstance(x, tuple) and len(x) == 2:
        return CaptureInput(x[0], x[1])
    raise InputError(f"an input must be a text, a (text, text_pair) tuple or a CaptureInput; got {x!r:.80}")


def check_attention_mode(attention: str) -> None:
    """Raise `InputError` unless ``attention`` is one of `CAPTURE_MODES`."""
    if attention not in CAPTURE_MODES:
        raise InputError(
            f"attention {attention!r} is not a capture mode: use one of {', '.join(map(repr, CAPTURE_MODES))}"
        )


def check_capture_options(fields: Iterable[str] | str, dtype: str) -> set[str]:
    """The fields a capture keeps (`ALL_FIELDS` for "all"), after checking them and ``dtype``; an `InputError`
    names what is unknown. For callers that must refuse bad options before other work (`generate`)."""
    wanted = _check_fields(fields)
    if dtype not in DTYPES:
        raise InputError(f"dtype {dtype!r} is not supported: use one of {', '.join(DTYPES)}")
    return wanted


def _check_fields(fields: Iterable[str] | str) -> set[str]:
    if fields == "all":
        return set(ALL_FIELDS)
    chosen = {fields} if isinstance(fields, str) else set(fields)
    unknown = chosen - set(ALL_FIELDS)
    if unknown:
        raise InputError(f"unknown field(s) {sorted(unknown)}: choose from {', '.join(ALL_FIELDS)} or 'all'")
    return chosen


def _role_function(handle: ModelHandle):
    def role_of(name: str, module: Any) -> str:
        if handle.kind != "encoder-decoder":
            return handle.main_stack
        if is_cross_attention(name, module):
            return "cross"
        return "decoder" if "decoder" in name.split(".") else "encoder"

    return role_of


def _pad(rows: list[list[int]], pad_id: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id rows into (batch, longest) ids and a 0/1 attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention[i, : len(row)] = 1
    return ids.to(device), attention.to(device)


def _model_inputs(handle: ModelHandle, encoded: list[Tokens], decoded: list[Tokens] | None) -> dict[str, Any]:
    tokenizer, model = handle.tokenizer, handle.model
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = model.device
    ids, attention = _pad([t.ids for t in encoded], pad_id, device)
    kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": attention}
    accepts = inspect.signature(model.forward).parameters
    if "token_type_ids" in accepts and "token_type_ids" in tokenizer.model_input_names:
        segments, _ = _pad([t.segments for t in encoded], 0, device)
        kwargs["token_type_ids"] = segments
    if decoded is not None:
        dec_ids, dec_attention = _pad([t.ids for t in decoded], pad_id, device)
        kwargs["decoder_input_ids"] = dec_ids
        kwargs["decoder_attention_mask"] = dec_attention
    return kwargs


def _output_projections(
    handle: ModelHandle, calls: list[LayerCall], dtype: torch.dtype, missing: dict[str, str]
) -> dict[str, np.ndarray]:
    """Each stack's per-head output projections (see `stack_projection`); a stack whose projection cannot
    be found is left out and ``missing["output_projection"]`` says why."""
    found = {}
    for role, role_calls in by_role(calls).items():
        first = role_calls[0]
        if "values" not in first.tensors:
            continue
        try:
            found[role] = stack_projection(
                handle.model, [c.module_name for c in role_calls], first.heads, first.tensors["values"].shape[-1], dtype
            )
        except (ProjectionNotFound, AttributeError) as error:
            missing["output_projection"] = f"{role} stack: {error} (value-norm attention needs it)"
    return found


def _add_hidden_states(
    handle: ModelHandle,
    stacks: dict[str, AttentionStack],
    outputs: Any,
    b: int,
    tokens: Tokens,
    dec: Tokens | None,
    wanted: set[str],
    dtype: torch.dtype,
) -> None:
    if "hidden_states" not in wanted:
        return
    if handle.kind == "encoder-decoder":
        assert dec is not None  # an encoder-decoder's capture always has decoder tokens
        sources = {
            "encoder": (outputs.encoder_hidden_states, len(tokens)),
            "decoder": (outputs.decoder_hidden_states, len(dec)),
        }
    else:
        sources = {handle.main_stack: (outputs.hidden_states, len(tokens))}
    for role, (layers, n) in sources.items():
        if layers is None:
            continue
        shape = handle.stacks[role]
        stack = stacks.setdefault(role, AttentionStack(role=role, layers=shape.layers, heads=shape.heads))
        stack.hidden_states = to_numpy(torch.stack([h[b, :n] for h in layers]), dtype)


def _predictions(handle: ModelHandle, outputs: Any, b: int, tokens: Tokens, k: int) -> Predictions | None:
    logits = getattr(outputs, "logits", None)
    if not handle.has_lm_head or logits is None:
        return None
    probabilities = torch.softmax(logits[b, : len(tokens)].float(), dim=-1)
    top = torch.topk(probabilities, k=min(k, probabilities.shape[-1]), dim=-1)
    ids = top.indices.cpu().numpy()
    tokenizer = handle.tokenizer
    special = special_token_ids(tokenizer)
    words = [
        display_forms(
            tokenizer.convert_ids_to_tokens([int(i) for i in row]), [int(i) in special for i in row], tokenizer
        )
        for row in ids
    ]
    mode = "masked" if handle.kind == "encoder" else "next"
    return Predictions(mode, ids, top.values.cpu().numpy().astype(np.float32), words)
