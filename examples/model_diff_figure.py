"""Which heads did fine-tuning change? The default encoder against its fine-tuned copy (made by
``examples/finetune_default.py``) over held-out EWT sentences, drawn as an SVG heat grid (layers × heads, mean
row Jensen-Shannon divergence in bits) for the README.

    nice -n 19 python examples/model_diff_figure.py [--copy DIR] [--sentences 50] [--out docs/images/model_diff.svg]

The sentences are the EWT test file's, from the one after the copy's held-out accuracy sentences on (never
trained on, never scored); the script prints the most changed heads and the copy's accuracies.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_default import TREEBANK, default_out  # noqa: E402

RAMP = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b")
"""A sequential single-hue ramp, white to dark blue: ordered by lightness, so it reads in any colour vision."""
CELL_W, CELL_H, LEFT, TOP = 46, 28, 64, 66


def colour(value: float, top: float) -> str:
    """The ramp's colour of ``value`` on the scale 0..``top`` (clipped), interpolated in sRGB."""
    x = min(max(value / top, 0.0), 1.0) * (len(RAMP) - 1) if top > 0 else 0.0
    i = min(int(x), len(RAMP) - 2)
    a, b = (np.array([int(c[k : k + 2], 16) for k in (1, 3, 5)]) for c in RAMP[i : i + 2])
    r, g, bl = np.rint(a + (b - a) * (x - i)).astype(int)
    return f"#{r:02x}{g:02x}{bl:02x}"


def heat_grid_svg(distances: np.ndarray, title: str, note: str) -> str:
    """An SVG heat grid of ``distances`` (layers, heads) in bits: one labelled cell per head, axes and a legend."""
    layers, heads = distances.shape
    top = float(np.ceil(distances.max() * 100) / 100) or 0.01
    width, height = LEFT + heads * CELL_W + 110, TOP + layers * CELL_H + 56
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{_escape(title)}</text>',
        f'<text x="{LEFT}" y="38" fill="#333">{_escape(note)}</text>',
    ]
    for layer in range(layers):
        y = TOP + layer * CELL_H
        parts.append(f'<text x="{LEFT - 8}" y="{y + CELL_H / 2 + 4}" text-anchor="end">{layer}</text>')
        for head in range(heads):
            value, x = float(distances[layer, head]), LEFT + head * CELL_W
            fill = colour(value, top)
            ink = "white" if value / top > 0.55 else "black"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{CELL_W - 1}" height="{CELL_H - 1}" fill="{fill}">'
                f"<title>layer {layer} head {head}: {value:.4f} bits</title></rect>"
                f'<text x="{x + CELL_W / 2}" y="{y + CELL_H / 2 + 4}" text-anchor="middle" font-size="10" '
                f'fill="{ink}">{value:.3f}</text>'
            )
    bottom = TOP + layers * CELL_H
    for head in range(heads):
        parts.append(
            f'<text x="{LEFT + head * CELL_W + CELL_W / 2}" y="{bottom + 16}" text-anchor="middle">{head}</text>'
        )
    parts.append(f'<text x="{LEFT + heads * CELL_W / 2}" y="{bottom + 36}" text-anchor="middle">head</text>')
    parts.append(
        f'<text transform="translate(16 {TOP + layers * CELL_H / 2}) rotate(-90)" text-anchor="middle">layer</text>'
    )
    parts.extend(_legend(LEFT + heads * CELL_W + 24, TOP, layers * CELL_H, top))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _legend(x: float, y: float, height: float, top: float) -> list[str]:
    """A vertical colour bar from 0 (bottom) to ``top`` bits, with three ticks."""
    stops = "".join(f'<stop offset="{i / (len(RAMP) - 1):.3f}" stop-color="{c}"/>' for i, c in enumerate(RAMP))
    parts = [
        f'<defs><linearGradient id="ramp" x1="0" y1="1" x2="0" y2="0">{stops}</linearGradient></defs>',
        f'<rect x="{x}" y="{y}" width="14" height="{height}" fill="url(#ramp)" stroke="#888"/>',
        f'<text x="{x}" y="{y - 12}">bits</text>',
    ]
    for share in (0.0, 0.5, 1.0):
        ty = y + height * (1 - share)
        parts.append(f'<line x1="{x + 14}" y1="{ty}" x2="{x + 18}" y2="{ty}" stroke="#333"/>')
        parts.append(f'<text x="{x + 21}" y="{ty + 4}">{top * share:.3f}</text>')
    return parts


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0], allow_abbrev=False)
    parser.add_argument("--copy", type=Path, default=None, help="the fine-tuned copy (default: the script's --out)")
    parser.add_argument("--sentences", type=int, default=50, help="held-out sentences compared, 1-1000")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs/images/model_diff.svg")
    args = parser.parse_args(argv)
    if not 1 <= args.sentences <= 1000:
        parser.error(f"--sentences {args.sentences} is out of range: allowed 1-1000")
    copy = (args.copy or default_out()).expanduser()
    if not (copy / "finetune.json").is_file():
        parser.error(f"--copy {copy} holds no fine-tuned copy (no finetune.json): run examples/finetune_default.py")
    import attnscope
    from attnscope.analysis.comparison_texts import compare_texts
    from attnscope.corpus import read_conllu
    from attnscope.corpus.ewt import DIR_ENV
    from attnscope.files import write_text_atomically

    record = json.loads((copy / "finetune.json").read_text(encoding="utf-8"))
    skip = int(record["arguments"]["eval_sentences"])
    test_file = Path(os.environ.get(DIR_ENV) or TREEBANK) / "en_ewt-ud-test.conllu"
    texts = [s.text for s in read_conllu(test_file)][skip : skip + args.sentences]
    result = compare_texts(attnscope.load("default"), attnscope.load(str(copy)), texts)
    cpu = f", {record['cpu_minutes']} CPU-min" if "cpu_minutes" in record else ""
    print(
        f"UPOS accuracy {record['accuracy_before']:.1%} before, {record['accuracy_after']:.1%} after "
        f"{record['steps']} steps ({record['minutes']} min wall{cpu})"
    )
    print(f"{len(texts)} held-out sentences, {int(result.rows.sum())} query rows; most changed heads:")
    for layer, head, bits in result.most_changed(8):
        print(f"  layer {layer} head {head}: {bits:.4f} bits")
    print("mean distance per layer: " + ", ".join(f"{d:.4f}" for d in result.distances.mean(axis=1)))
    title = "What fine-tuning on UPOS changed in all-MiniLM-L6-v2's heads"
    note = (
        f"mean row JSD (bits), default vs copy, over {len(texts)} held-out EWT sentences; UPOS accuracy "
        f"{record['accuracy_before']:.1%} (probe) -> {record['accuracy_after']:.1%} after {record['steps']} steps"
    )
    write_text_atomically(args.out, heat_grid_svg(result.distances, title, note))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
