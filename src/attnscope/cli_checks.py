"""Checks the CLI makes before the expensive work (loading a model, reading a corpus).

Layer and head numbers are checked against what is known before any weights load: an index's
manifest (see `attnscope.index.Index.check_query`), or a model's config read alone
(`config_shape`). The error names the allowed range, as the later checks would. So are the options
that only some models take (``--target``: encoder-decoders; ``--stack``: the stacks the model has),
and the port ``serve`` listens on (`check_port`: bound before any model loads).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InputError, allowed_range
from .selection import check_choice, check_choices

STACKS = ("encoder", "decoder", "cross")


@dataclass(frozen=True)
class ConfigShape:
    """What a model's config says before its weights load: its kind ("encoder", "decoder",
    "encoder-decoder") and each attention stack's `StackShape`."""

    kind: str
    stacks: dict[str, Any]

    @property
    def main(self) -> str:
        """The self-attention stack that reads the text: "decoder" for decoder-only models."""
        return "decoder" if self.kind == "decoder" else "encoder"


def config_shape(model: str, trust_remote_code: bool = False) -> ConfigShape | None:
    """The kind and stacks of ``model`` read from its config alone (no weights), or None when the config
    cannot be read or understood here (loading the model then reports why).

    Raises `ModelNotFoundError` at once for a path that does not exist, or a hub name that is neither
    cached nor reachable. A built-in model (``smollm2``) is converted into the cache first when it is not
    there yet (the load that follows reads it from there).
    """
    import transformers

    from .capture.loading import model_kind, quiet_transformers, stack_shapes
    from .capture.sources import locate

    source, hub = locate(model)
    options: dict[str, Any] = {"trust_remote_code": trust_remote_code, **hub}
    try:
        with quiet_transformers():
            config = transformers.AutoConfig.from_pretrained(source, **options)
        kind = model_kind(config)
        stacks = stack_shapes(config, kind)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # `load` reads the config again and says what is wrong with it
    return ConfigShape(kind, stacks)


def _model_name(model: str) -> str:
    from .capture.sources import model_name

    return model_name(model)


def check_stack_and_target(shape: ConfigShape, model: str, stack: str | None, target: str | None) -> str:
    """The stack ``--stack`` names (default: the model's main stack), refusing one the model lacks, and a
    ``--target`` for a model that has no decoder reading one (only encoder-decoders do)."""
    name = _model_name(model)
    if target is not None and shape.kind != "encoder-decoder":
        raise InputError(
            f"--target is the decoder's input of an encoder-decoder model; model {name!r} is "
            f"{'a decoder-only' if shape.kind == 'decoder' else 'an encoder-only'} model, which reads "
            "only the text (and --pair): leave --target out"
        )
    if stack is None:
        return shape.main
    if stack not in STACKS:
        raise InputError(f"--stack must be one of {', '.join(STACKS)}, got {stack!r}")
    if stack not in shape.stacks:
        raise InputError(
            f"--stack {stack}: model {name!r} has no {stack} stack; it has "
            f"{' and '.join(shape.stacks)} (only encoder-decoders have encoder, decoder and cross stacks)"
        )
    return stack


def check_layer_and_heads(
    model: str,
    layer: int | None,
    heads: Sequence[int],
    trust_remote_code: bool = False,
    *,
    stack: str | None = None,
    target: str | None = None,
) -> None:
    """Refuse a ``layer`` or ``heads`` outside the chosen stack of ``model`` (``stack``, default its main
    stack), a stack it lacks, or a ``target`` it cannot read, from its config alone.

    Raises `InputError` ("layer 9 is out of range: the encoder stack of ... has layers 0-5"); where another
    stack of the model has that layer, the message says which (``--stack decoder``)."""
    if layer is None and not heads and stack is None and target is None:
        return
    shape = config_shape(model, trust_remote_code)
    if shape is None:
        return
    role = check_stack_and_target(shape, model, stack, target)
    found = shape.stacks.get(role)
    if found is None:
        return
    what = f"the {role} stack of model {_model_name(model)!r}"
    try:
        if layer is not None:
            check_choice("--layer", layer, found.layers, what, unit="layer")
        check_choices("--head", heads, found.heads, what, unit="head", allow_empty=True, merge_repeats=True)
    except InputError as error:
        raise InputError(f"{error}{_other_stacks(shape, role, layer, heads)}") from None


def _other_stacks(shape: ConfigShape, role: str, layer: int | None, heads: Sequence[int]) -> str:
    """A hint naming the other stacks where ``layer`` and ``heads`` exist, when there are any."""
    fits = [
        r
        for r, s in shape.stacks.items()
        if r != role and (layer is None or 0 <= layer < s.layers) and all(0 <= h < s.heads for h in heads)
    ]
    if not fits:
        return ""
    other = fits[0]
    size = shape.stacks[other].layers
    return f" (the {other} stack has {allowed_range('layer', size)}: add --stack {other})"


def check_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port``, ready to hand to the server; `InputError` saying why it cannot
    be bound (in use by another program, a privileged port, not an address of this machine)."""
    if not 1 <= port <= 65535:
        raise InputError(f"port {port} is out of range: use 1-65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as error:
        sock.close()
        code = getattr(error, "errno", None)
        if code == errno.EADDRINUSE:
            reason = "another program is listening there (another attnscope serve?): stop it, or choose another --port"
        elif code in (errno.EACCES, errno.EPERM):
            reason = "binding a port below 1024 needs administrator rights: choose a port from 1024 up"
        elif code == errno.EADDRNOTAVAIL or isinstance(error, socket.gaierror):
            reason = f"{host} is not an address of this machine: use 127.0.0.1 (or 0.0.0.0 to listen everywhere)"
        else:
            reason = str(getattr(error, "strerror", None) or error)
        raise InputError(f"cannot listen on {host} port {port}: {reason}") from None
    sock.set_inheritable(True)
    return sock
