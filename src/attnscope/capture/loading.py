"""Loading a model into a `ModelHandle` that knows its shape and kind; the name ("default", a built-in
model's alias, a hub name, a local path) is resolved by `sources.locate`."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import AttnscopeError, ModelNotFoundError
from .quiet import quiet_transformers as quiet_transformers  # imported from here by callers
from .sources import DEFAULT_MODEL, default_model_path, locate, model_name

ModelKind = Literal["encoder", "decoder", "encoder-decoder"]

# Component names under which transformers' models keep cross-attention modules.
_CROSS_ATTENTION_NAMES = frozenset(
    {"crossattention", "encoder_attn", "EncDecAttention", "cross_attn", "cross_attention"}
)


@dataclass(frozen=True)
class StackShape:
    """The shape of one stack of attention layers: ``heads`` query heads share ``kv_heads`` key/value heads."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int


@dataclass(repr=False)
class ModelHandle:
    """A loaded model with its tokenizer and what attnscope needs to know about it.

    ``stacks`` maps each attention stack the model has ("encoder", "decoder", "cross") to its shape.
    Captures on one handle are serialised by ``lock``: a capture switches the model's attention
    implementation for its duration.
    """

    name: str
    source: str
    model: Any
    tokenizer: Any
    kind: ModelKind
    architecture: str
    has_lm_head: bool
    stacks: dict[str, StackShape]
    max_length: int
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def __repr__(self) -> str:
        """One line: name, kind and architecture, each stack's layers × heads, the LM head."""
        stacks = ", ".join(
            f"{role} {s.layers}×{s.heads}" + (f" (kv {s.kv_heads})" if s.kv_heads != s.heads else "")
            for role, s in self.stacks.items()
        )
        head = "LM head" if self.has_lm_head else "no LM head"
        return f"ModelHandle({self.name!r}, {self.kind} {self.architecture}: {stacks}; {head})"

    @property
    def label(self) -> str:
        """The model's name as views show it: the hub id, or a local checkpoint's folder name, never a path
        of the user's machine (see `readable_model_name`)."""
        return readable_model_name(self.name)

    @property
    def special_tokens(self) -> dict[str, str]:
        """The tokenizer's special tokens by role, e.g. ``{"cls_token": "[CLS]", ...}``."""
        return {k: str(v) for k, v in self.tokenizer.special_tokens_map.items() if isinstance(v, str)}

    @property
    def mask_token(self) -> str | None:
        return self.tokenizer.mask_token

    @property
    def main_stack(self) -> str:
        """The self-attention stack that reads the user's text: "decoder" for decoder-only models."""
        return "decoder" if self.kind == "decoder" else "encoder"

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary of the model: name, kind, stacks, special tokens, LM head."""
        return {
            "name": self.name,
            "label": self.label,
            "source": self.source,
            "kind": self.kind,
            "architecture": self.architecture,
            "has_lm_head": self.has_lm_head,
            "max_length": self.max_length,
            "stacks": {k: vars(v) for k, v in self.stacks.items()},
            "special_tokens": self.special_tokens,
        }


_HUB_CACHE = re.compile(r"(?:^|/)models--([^/]+?)(?:--([^/]+))?/snapshots/[^/]+/?$")
_CHECKPOINT = re.compile(r"^(checkpoint|step|epoch)[-_]?\d+$", re.IGNORECASE)


def readable_model_name(name: str) -> str:
    """A model's name fit to show and share: a hub id as it is; a local path as the checkpoint's name.

    The hub cache's ``.../models--org--name/snapshots/<revision>`` reads ``org/name``; the default
    model's folder reads its hub id; any other path reads its last folder (with its parent for a
    training checkpoint such as ``run-1/checkpoint-500``), so no absolute path (home directory, user
    name) reaches a view or an exported file.
    """
    text = str(name).strip()
    expanded = os.path.expanduser(text)
    looks_local = (
        text.startswith(("/", "~", ".", "\\"))
        or os.path.isabs(expanded)
        or ((os.sep in text or "/" in text) and os.path.exists(expanded))
        or re.match(r"^[A-Za-z]:[\\/]", text)
    )
    if not looks_local:
        return text
    normalised = expanded.replace("\\", "/").rstrip("/")
    cached = _HUB_CACHE.search(normalised)
    if cached:
        return "/".join(g for g in cached.groups() if g)
    with contextlib.suppress(ModelNotFoundError):
        if os.path.normpath(normalised) == os.path.normpath(default_model_path().as_posix()):
            return DEFAULT_MODEL
    parts = [p for p in normalised.split("/") if p not in ("", ".", "..", "~")]
    if not parts:
        return "local model"
    if _CHECKPOINT.match(parts[-1]) and len(parts) > 1:
        return f"{parts[-2]}/{parts[-1]}"
    return parts[-1]


def _not_found(name: str, source: str, error: Exception) -> AttnscopeError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "trust_remote_code" in str(error):
        return AttnscopeError(
            f"model {name!r} needs to run code shipped with the checkpoint; attnscope runs such code only "
            "when asked: pass trust_remote_code=True (--trust-remote-code) if you trust its source"
        )
    if os.path.exists(source):
        return ModelNotFoundError(f"model {name!r}: the directory {source} is not a loadable model ({reason})")
    return ModelNotFoundError(
        f"model {name!r} was not found: there is no local directory of that name, and the Hugging Face "
        f"hub did not provide it ({reason}). Give a local path, 'default', or the hub name of an existing "
        "model (downloading needs network access)."
    )


def model_kind(config: Any) -> ModelKind:
    """Classify a transformers config as an encoder, a decoder or an encoder-decoder."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder"
    architectures = getattr(config, "architectures", None) or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) and "Bert" not in a for a in architectures):
        return "decoder"
    if getattr(config, "is_decoder", False):
        return "decoder"
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "encoder"
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "decoder"
    return "encoder"


def _first_attr(config: Any, names: tuple[str, ...], default: Any = None) -> Any:
    for n in names:
        value = getattr(config, n, None)
        if value is not None:
            return value
    return default


class ConfigShapeError(AttnscopeError):
    """A model config that does not say how many layers and heads its attention stacks have."""


_LAYERS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers")
_HEADS = ("num_attention_heads", "num_heads", "n_head", "n_heads")
_HIDDEN = ("hidden_size", "d_model", "n_embd", "dim")


def _is_config(value: Any) -> bool:
    return value is not None and hasattr(value, "to_dict") and hasattr(value, "model_type")


def stack_configs(config: Any) -> tuple[Any, Any]:
    """The configs that describe the encoder and the decoder stack: sub-configs where the model is composed
    of two models (``EncoderDecoderModel``: ``config.encoder``, ``config.decoder``), the text model's where
    the config nests one (``text_config``), else the config itself for both."""
    encoder, decoder = getattr(config, "encoder", None), getattr(config, "decoder", None)
    if _is_config(encoder) and _is_config(decoder):
        return encoder, decoder
    text = getattr(config, "text_config", None)
    if _is_config(text):
        return text, text
    return config, config


def _count(config: Any, names: tuple[str, ...], what: str, role: str) -> int:
    """The first of ``names`` the config sets, as a positive integer; else a `ConfigShapeError` saying which."""
    value = _first_attr(config, names)
    model_type = getattr(config, "model_type", None) or type(config).__name__
    if value is None:
        raise ConfigShapeError(
            f"the config of this {model_type!r} model does not give the number of {what} of its {role} stack "
            f"(attnscope looks for {', '.join(names)}): this kind of model is not supported yet"
        )
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigShapeError(
            f"the config of this {model_type!r} model gives {value!r} as the number of {what} of its {role} "
            "stack; attnscope needs one positive whole number per stack (models whose layers differ in their "
            "number of heads are not supported yet)"
        )
    return value


def _stack_shape(
    config: Any, role: str, layers: tuple[str, ...], heads: tuple[str, ...], kv_heads: tuple[str, ...]
) -> StackShape:
    n_layers = _count(config, layers, "layers", role)
    n_heads = _count(config, heads, "attention heads", role)
    n_kv = _count(config, kv_heads, "key/value heads", role) if _first_attr(config, kv_heads) is not None else n_heads
    head_dim = _first_attr(config, ("head_dim", "d_kv"))
    if head_dim is None:
        hidden = _first_attr(config, _HIDDEN)
        head_dim = hidden // n_heads if isinstance(hidden, int) and not isinstance(hidden, bool) else 0
    head_dim = head_dim if isinstance(head_dim, int) and not isinstance(head_dim, bool) and head_dim > 0 else 0
    return StackShape(layers=n_layers, heads=n_heads, kv_heads=n_kv, head_dim=head_dim)


def stack_shapes(config: Any, kind: ModelKind) -> dict[str, StackShape]:
    """Layers and heads of each attention stack, read from the config (verified by every capture).

    Flat configs name their sizes in many spellings (BERT's ``num_hidden_layers``, GPT-2's ``n_layer``,
    T5's ``num_layers``/``num_decoder_layers``, BART's ``encoder_layers``); composite models keep them in
    sub-configs (see `stack_configs`). Raises `ConfigShapeError` when a size is missing or not a number.
    ``head_dim`` is 0 when the config does not give it (the capture reads it from the tensors).
    """
    encoder, decoder = stack_configs(config)
    kv = ("num_key_value_heads",)
    if kind == "encoder":
        return {
            "encoder": _stack_shape(
                encoder, "encoder", ("encoder_layers",) + _LAYERS, ("encoder_attention_heads",) + _HEADS, kv
            )
        }
    if kind == "decoder":
        return {
            "decoder": _stack_shape(
                decoder, "decoder", ("decoder_layers",) + _LAYERS, ("decoder_attention_heads",) + _HEADS, kv
            )
        }
    enc = _stack_shape(
        encoder,
        "encoder",
        ("encoder_layers",) + _LAYERS,
        ("encoder_attention_heads",) + _HEADS,
        ("encoder_key_value_heads",),
    )
    dec = _stack_shape(
        decoder,
        "decoder",
        ("decoder_layers", "num_decoder_layers") + _LAYERS,
        ("decoder_attention_heads",) + _HEADS,
        ("decoder_key_value_heads",),
    )
    return {"encoder": enc, "decoder": dec, "cross": dec}


def _head_class(kind: ModelKind, config: Any) -> Any:
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    if kind == "encoder-decoder":
        return transformers.AutoModelForSeq2SeqLM
    if kind == "decoder":
        return transformers.AutoModelForCausalLM
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return transformers.AutoModelForMaskedLM
    return None


def _checkpoint_has_no_head(config: Any) -> bool:
    """True when the config names only headless architectures (e.g. ``["BertModel"]``); a composite
    ``EncoderDecoderModel`` has its decoder's language-model head."""
    from transformers.models.auto import modeling_auto

    with_head = {
        name
        for mapping in (
            modeling_auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
            modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
            modeling_auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        )
        for name in mapping.values()
        if isinstance(name, str)
    }
    architectures = getattr(config, "architectures", None) or []
    return bool(architectures) and all(
        a.endswith("Model") and "LMHead" not in a and a not in with_head for a in architectures
    )


def _load_weights(source: str, config: Any, kind: ModelKind, options: dict[str, Any]) -> tuple[Any, bool]:
    """Load the model with its language-model head when the checkpoint has one; report whether it did."""
    import transformers

    head_class = _head_class(kind, config)
    if head_class is None or _checkpoint_has_no_head(config):
        return transformers.AutoModel.from_pretrained(source, config=config, **options), False
    model, info = head_class.from_pretrained(source, config=config, output_loading_info=True, **options)
    prefix = getattr(model, "base_model_prefix", "") + "."
    head_missing = [k for k in info.get("missing_keys", ()) if not k.startswith(prefix)]
    if head_missing and model.base_model is not model:
        # The checkpoint holds the body only: keep the body, drop the randomly initialised head.
        return model.base_model, False
    return model, True


def load(
    model: str = "default",
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    dtype: Any = None,
    device: str = "cpu",
) -> ModelHandle:
    """Load a model for capture: ``"default"``, a built-in model (``"smollm2"``), a Hugging Face hub name,
    or a local directory.

    A built-in model's hub name (``HuggingFaceTB/SmolLM2-135M-Instruct``) loads the built-in copy when the
    hub cannot provide it (see `sources.locate`). The language-model head is loaded when the checkpoint has
    one (``handle.has_lm_head``). Remote code runs only with ``trust_remote_code=True``. Raises
    `ModelNotFoundError` with a readable message when the model cannot be found or loaded.
    """
    import transformers

    # a hub name fails at once when it is neither cached nor reachable (unless a built-in copy stands in)
    source, hub = locate(model, revision)
    options: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code, **hub}
    try:
        config = transformers.AutoConfig.from_pretrained(source, **options)
    except (OSError, ValueError, KeyError) as error:
        raise _not_found(model, source, error) from None
    kind = model_kind(config)
    load_options = dict(options, attn_implementation="eager")
    if dtype is not None:
        load_options["dtype"] = dtype
    try:
        with quiet_transformers():
            net, has_head = _load_weights(source, config, kind, load_options)
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, **options)
    except (OSError, ValueError, KeyError) as error:
        raise _not_found(model, source, error) from None
    net = net.to(device).eval()
    max_length = _max_length(tokenizer, config)
    return ModelHandle(
        name=model_name(model),
        source=source,
        model=net,
        tokenizer=tokenizer,
        kind=kind,
        architecture=config.model_type,
        has_lm_head=has_head,
        stacks=stack_shapes(net.config, kind),
        max_length=max_length,
    )


def _max_length(tokenizer: Any, config: Any) -> int:
    """The longest input the model takes: the tokenizer's limit, else the position-embedding count."""
    limits = []
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_limit, int) and 0 < tok_limit < 1_000_000:
        limits.append(tok_limit)
    for part in {id(c): c for c in (config, *stack_configs(config))}.values():
        positions = _first_attr(part, ("max_position_embeddings", "n_positions"))
        if isinstance(positions, int) and not isinstance(positions, bool) and positions > 0:
            limits.append(positions)
    return min(limits) if limits else 4096


def is_cross_attention(module_name: str, module: Any) -> bool:
    """Whether an attention module attends from the decoder to the encoder's output."""
    if getattr(module, "is_cross_attention", False):
        return True
    return any(part in _CROSS_ATTENTION_NAMES for part in module_name.split("."))


def wrap(model: Any, tokenizer: Any, name: str | None = None) -> ModelHandle:
    """A `ModelHandle` around a transformers model and tokenizer the caller already loaded.

    For callers that hold a model object (BertViz's ``show(model, model_type, tokenizer, ...)``):
    nothing is reloaded or copied, and the model's attention implementation is switched only for
    the duration of each capture. ``name`` defaults to the checkpoint name in the model's config.
    """
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "model_type") or not callable(model):
        raise AttnscopeError(
            f"expected a transformers model (a PreTrainedModel with a config), got {type(model).__name__}"
        )
    if tokenizer is None or not callable(getattr(tokenizer, "convert_ids_to_tokens", None)):
        raise AttnscopeError(
            f"expected the model's transformers tokenizer, got {type(tokenizer).__name__}: pass the tokenizer "
            "loaded with AutoTokenizer.from_pretrained for the same checkpoint"
        )
    kind = model_kind(config)
    heads = getattr(model, "get_output_embeddings", None)
    source = str(getattr(config, "_name_or_path", "") or type(model).__name__)
    return ModelHandle(
        name=name or source,
        source=source,
        model=model,
        tokenizer=tokenizer,
        kind=kind,
        architecture=config.model_type,
        has_lm_head=callable(heads) and heads() is not None,
        stacks=stack_shapes(config, kind),
        max_length=_max_length(tokenizer, config),
    )
