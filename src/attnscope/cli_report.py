"""What ``attnscope inspect`` reports, as JSON and as text: the model in one readable line, each stack's
tokens (an encoder-decoder's encoder and decoder inputs), each head's dominant pattern, and the model's
predictions with where they are: at the masked positions of the text (masked-LMs), or of the next token
after the last position of the text (decoders) or of the decoder's input (encoder-decoders)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import count

STYLE = {
    "previous": "cyan",
    "next": "magenta",
    "self": "green",
    "first": "red",
    "special": "yellow",
    "broad": "blue",
    "mixed": "dim",
}
SHORT = {"previous": "←", "next": "→", "self": "●", "first": "F", "special": "S", "broad": "~", "mixed": "·"}


def architecture(handle: Any) -> str:
    """The model's architecture in words: its model type, or for a model composed of two (BERT2BERT's
    ``EncoderDecoderModel``) the type of each part: "bert encoder, bert decoder"."""
    from .capture.loading import stack_configs

    config = getattr(handle.model, "config", None)
    if config is not None:
        encoder, decoder = stack_configs(config)
        if encoder is not config and decoder is not config and encoder is not decoder:
            return f"{encoder.model_type} encoder, {decoder.model_type} decoder"
    return handle.architecture


def header(handle: Any) -> str:
    """One line: the model's readable name, kind, architecture and each stack's layers × heads."""
    shape = ", ".join(
        f"{role}: {count(s.layers, 'layer')} × {count(s.heads, 'head')}" for role, s in handle.stacks.items()
    )
    return f"{handle.label} — {handle.kind} ({architecture(handle)}): {shape}"


def inspect_report(handle: Any, cap: Any, patterns: dict[str, Any]) -> dict[str, Any]:
    """The report of ``attnscope inspect --json``: ``patterns`` maps each self-attention stack to its
    `PatternScores`. ``predictions`` maps positions (strings) to top-k lists, and ``predictions_at`` says
    which stack's positions those are and what the model predicts there ("masked" or "next")."""
    report: dict[str, Any] = {
        "header": header(handle),
        "model": handle.describe(),
        "tokens": list(cap.tokens.display),
        "token_details": cap.tokens.to_dict(),
        "patterns": {
            role: [
                [
                    {"pattern": scores.labels[layer][h], "score": round(scores.score(layer, h), 4)}
                    for h in range(len(scores.labels[layer]))
                ]
                for layer in range(len(scores.labels))
            ]
            for role, scores in patterns.items()
        },
        "predictions": None,
    }
    if cap.decoder_tokens is not None:
        report["decoder_tokens"] = list(cap.decoder_tokens.display)
        report["decoder_token_details"] = cap.decoder_tokens.to_dict()
    if cap.tokens.truncated:
        report["truncated_tokens"] = cap.tokens.truncated
    if not handle.has_lm_head:
        report["predictions_note"] = f"model {handle.label!r} has no language-model head: no predictions"
    elif cap.predictions is not None:
        _add_predictions(report, handle, cap)
    return report


def _add_predictions(report: dict[str, Any], handle: Any, cap: Any) -> None:
    if handle.kind == "encoder":
        stack, positions = "encoder", list(cap.tokens.masked)
        if not positions:
            report["predictions_note"] = (
                f"no position is masked, so there is nothing to predict: mask one (--mask N, or type the mask "
                f"token {handle.mask_token} in the text) to see the model's candidates there"
            )
            return
    else:
        tokens = cap.decoder_tokens if cap.decoder_tokens is not None else cap.tokens
        stack, positions = "decoder", [len(tokens) - 1]
    report["predictions"] = {
        str(p): [{"token": t, "probability": round(prob, 6)} for t, prob in cap.top_k(p)] for p in positions
    }
    report["predictions_at"] = {
        "stack": stack,
        "mode": cap.predictions.mode,
        "positions": positions,
        "hidden": {str(p): w for p, w in cap.tokens.original.items()},
    }


def _token_line(label: str, tokens: list[str], details: dict[str, Any]) -> str:
    marked = []
    for i, token in enumerate(tokens):
        style = "yellow" if details["special"][i] else ("bold red" if i in details["masked"] else "")
        marked.append(f"[dim]{i}[/][{style}]{escape(token)}[/]" if style else f"[dim]{i}[/]{escape(token)}")
    return f"{label}: " + "  ".join(marked)


def _predictions_lines(report: dict[str, Any]) -> list[str]:
    at = report.get("predictions_at") or {}  # set whenever there are predictions
    lines = []
    for position, top in (report["predictions"] or {}).items():
        shown = ", ".join(f"{escape(p['token'])} {p['probability']:.3f}" for p in top)
        if at["mode"] == "masked":
            hidden = at["hidden"].get(position)
            where = f"masked position {position}" + (f" (hiding {escape(repr(hidden))})" if hidden else "")
            lines.append(f"predictions at {where}: {shown}")
            continue
        decoder = "decoder_tokens" in report
        tokens = report["decoder_tokens"] if decoder else report["tokens"]
        place = f"decoder position {position}" if decoder else f"position {position}"
        whose = "the decoder's next token" if decoder else "the next token"
        lines.append(f"{whose} after {place} ({escape(tokens[int(position)])}): {shown}")
    return lines


def print_report(report: dict[str, Any]) -> None:
    """``report`` (see `inspect_report`) as text: the header, the tokens, a table per stack, the predictions."""
    console = Console(soft_wrap=True)
    console.print(escape(report["header"]), highlight=False)
    if "decoder_tokens" in report:
        console.print(_token_line("encoder tokens", report["tokens"], report["token_details"]), highlight=False)
        console.print(
            _token_line("decoder tokens", report["decoder_tokens"], report["decoder_token_details"]), highlight=False
        )
    else:
        console.print(_token_line("tokens", report["tokens"], report["token_details"]), highlight=False)
    if report.get("truncated_tokens"):
        cut = report["truncated_tokens"]
        console.print(f"[yellow]truncated: {count(cut, 'token')} {'was' if cut == 1 else 'were'} cut from the end[/]")
    for role, layers in report["patterns"].items():
        table = Table(
            title=f"{role} self-attention: dominant pattern per head (columns: heads)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            padding=(0, 1),
        )
        table.add_column("layer", justify="right")
        for h in range(len(layers[0])):
            table.add_column(str(h), justify="center")
        for layer, heads in enumerate(layers):
            table.add_row(str(layer), *[f"[{STYLE[c['pattern']]}]{SHORT[c['pattern']]}[/]" for c in heads])
        console.print(table)
    console.print(
        "← previous token   → next token   ● self   F first token   S special tokens   ~ broad   · mixed",
        highlight=False,
    )
    if report.get("predictions_note"):
        console.print(escape(report["predictions_note"]), highlight=False)
    for line in _predictions_lines(report):
        console.print(line, highlight=False)
