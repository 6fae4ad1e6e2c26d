"""Two head atlases compared (B5 at the corpus level): for every score both atlases have, each head's
score under model A, under model B and, when the two models have the same layers × heads, the
difference A − B; per score the heads that changed most and the best head of each model.

Both atlases must have been computed on the same corpus and the same sentences (the corpus's
checksum and the number of sentences scored), otherwise the scores are not comparable.

Scores are named as ``atlas.parquet`` names its columns (`Atlas.table`): the pattern scores
(``previous``, ..., ``entropy``), ``probe_<name>`` for synthetic-probe scores and
``"<relation> <direction>"`` for relation accuracies. On disk (`write_comparison`) a comparison is
``atlas-compare.json`` (`AtlasComparison.to_dict`) and ``atlas-compare.parquet``, a long table with a
``side`` column ("a", "b", "a-b") and the same score columns as ``atlas.parquet`` (see
`AtlasComparison.table`), so models of different shapes fit one table.

>>> comparison = compare_atlases(atlas_of_base, atlas_of_finetuned)
>>> comparison.score("previous").most_changed(3)   # [HeadChange(layer, head, a, b, difference), ...]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.relations import DIRECTIONS
from ..errors import InputError, count
from ..files import replace_atomically, write_text_atomically, writing
from .model import SCORES, Atlas

FORMAT = "attnscope-atlas-comparison"
FORMAT_VERSION = 1
SIDES = ("a", "b", "a-b")
"""The values of the ``side`` column of `AtlasComparison.table`."""
COMPARE_JSON = "atlas-compare.json"
COMPARE_PARQUET = "atlas-compare.parquet"
COMPARE_HTML = "atlas-compare.html"


@dataclass(frozen=True)
class HeadChange:
    """One head's score under A and B and the difference ``a - b`` (same layer and head in both models)."""

    layer: int
    head: int
    a: float
    b: float
    difference: float


@dataclass(frozen=True)
class ScoreComparison:
    """One score under both models: ``a`` is (layers_a, heads_a), ``b`` (layers_b, heads_b), and
    ``difference`` = a − b, (layers, heads), or None when the shapes differ. ``group`` is "pattern",
    "probe" or "relation"; ``arcs`` the relation's arcs in the corpus (None for other scores)."""

    key: str
    group: str
    a: np.ndarray
    b: np.ndarray
    difference: np.ndarray | None
    arcs: int | None = None

    def best(self, side: str) -> tuple[int, int, float]:
        """The (layer, head, score) of the highest-scoring head of ``side`` ("a" or "b"), the lowest layer,
        then head, among ties."""
        if side not in ("a", "b"):
            raise InputError(f"side {side!r} is not one of a, b")
        scores = self.a if side == "a" else self.b
        layer, head = np.unravel_index(int(np.argmax(scores)), scores.shape)
        return int(layer), int(head), float(scores[layer, head])

    def most_changed(self, k: int = 5) -> list[HeadChange]:
        """The ``k`` heads whose score changed most (largest |A − B|, the lowest layer, then head, among
        ties); none when the shapes differ. Unchanged heads are listed too when fewer heads changed."""
        if self.difference is None:
            return []
        flat = np.abs(self.difference).reshape(-1)
        order = np.lexsort((np.arange(flat.size), -flat))[: max(k, 0)]
        heads = self.difference.shape[1]
        return [
            HeadChange(
                int(i) // heads,
                int(i) % heads,
                float(self.a.reshape(-1)[i]),
                float(self.b.reshape(-1)[i]),
                float(self.difference.reshape(-1)[i]),
            )
            for i in order
        ]

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """JSON-ready: the difference grid (``[layer][head]``, 6 decimals, or None), each model's best head
        and the ``top`` most changed heads. A's and B's grids are in the atlases' own documents."""
        return {
            "key": self.key,
            "group": self.group,
            "arcs": self.arcs,
            "difference": None if self.difference is None else np.round(self.difference, 6).tolist(),
            "best_a": _head(*self.best("a")),
            "best_b": _head(*self.best("b")),
            "most_changed": [
                {
                    "layer": c.layer,
                    "head": c.head,
                    "a": round(c.a, 6),
                    "b": round(c.b, 6),
                    "difference": round(c.difference, 6),
                }
                for c in self.most_changed(top)
            ],
        }


def _head(layer: int, head: int, value: float) -> dict[str, Any]:
    return {"layer": layer, "head": head, "value": round(value, 6)}


@dataclass(frozen=True)
class AtlasComparison:
    """Two atlases of one corpus (``a``, ``b``) and every score they share (``scores``, in table order:
    patterns, probes, relations). ``left_out`` names the scores only one of them has (a decoder's
    default probe scores against an encoder without them, a relation one atlas left out)."""

    a: Atlas
    b: Atlas
    scores: tuple[ScoreComparison, ...]
    left_out: tuple[str, ...] = ()

    @property
    def same_shape(self) -> bool:
        """Whether both models have the same layers × heads (then every score has a difference)."""
        return (self.a.layers, self.a.heads) == (self.b.layers, self.b.heads)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.scores)

    def score(self, key: str) -> ScoreComparison:
        """The comparison of score ``key``; an `InputError` names the compared scores if it is not one."""
        for score in self.scores:
            if score.key == key:
                return score
        raise InputError(f"score {key!r} is not compared; the compared scores are: {', '.join(self.keys)}")

    def table(self) -> dict[str, list[Any]]:
        """A long table, one row per head and side: ``side`` ("a", "b", and "a-b" when the shapes match),
        ``model`` (A's name, B's, or "A − B"), ``layer``, ``head``, then one column per compared score,
        named as in ``atlas.parquet``. Rows are side-major, then layer-major."""
        columns: dict[str, list[Any]] = {"side": [], "model": [], "layer": [], "head": []}
        columns.update({s.key: [] for s in self.scores})
        sides: list[tuple[str, str, list[np.ndarray]]] = [
            ("a", self.a.model, [s.a for s in self.scores]),
            ("b", self.b.model, [s.b for s in self.scores]),
        ]
        if self.same_shape:
            grids = [s.difference for s in self.scores if s.difference is not None]
            sides.append(("a-b", f"{self.a.model} − {self.b.model}", grids))
        for side, model, grids in sides:
            layers, heads = (self.b.layers, self.b.heads) if side == "b" else (self.a.layers, self.a.heads)
            layer, head = np.divmod(np.arange(layers * heads), heads)
            columns["side"] += [side] * layer.size
            columns["model"] += [model] * layer.size
            columns["layer"] += layer.tolist()
            columns["head"] += head.tolist()
            for score, grid in zip(self.scores, grids):
                columns[score.key] += np.asarray(grid, dtype=np.float64).reshape(-1).tolist()
        return columns

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """A JSON-ready dict (``atlas-compare.json``, ``attnscope atlas --compare --json``, the page's data):
        both atlases' own documents (`Atlas.to_dict`) as ``a`` and ``b``, ``same_shape``, ``scores`` (one
        `ScoreComparison.to_dict` per compared score) and ``left_out``."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "same_shape": self.same_shape,
            "scores": [s.to_dict(top) for s in self.scores],
            "left_out": list(self.left_out),
        }


def score_grids(atlas: Atlas) -> dict[str, tuple[str, np.ndarray, int | None]]:
    """Every score of ``atlas`` by its ``atlas.parquet`` column name: (group, (layers, heads) grid, arcs)."""
    grids: dict[str, tuple[str, np.ndarray, int | None]] = {
        name: ("pattern", np.asarray(getattr(atlas.patterns, name), dtype=np.float64), None) for name in SCORES
    }
    if atlas.probes is not None:
        for name in atlas.probes.names:
            grids[f"probe_{name}"] = ("probe", np.asarray(atlas.probes.scores[name], dtype=np.float64), None)
    if atlas.relations is not None:
        for r, name in enumerate(atlas.relations.names):
            for direction in DIRECTIONS:
                grid = np.asarray(atlas.relations.accuracy(direction)[r], dtype=np.float64)
                grids[f"{name} {direction}"] = ("relation", grid, int(atlas.relations.pairs[r]))
    return grids


def check_same_corpus(a: Atlas, b: Atlas) -> None:
    """Refuse (`InputError`) two atlases not computed on the same corpus and the same sentences."""

    def describe(atlas: Atlas, side: str) -> str:
        return (
            f"{side} ({atlas.model!r}) on {atlas.corpus!r} (checksum {atlas.corpus_checksum[:12]}, "
            f"{count(atlas.sentences, 'sentence')})"
        )

    if a.corpus_checksum != b.corpus_checksum:
        raise InputError(
            f"the atlases were computed on different corpora: {describe(a, 'A')}, {describe(b, 'B')}; "
            "compute both on the same corpus"
        )
    if a.sentences != b.sentences:
        raise InputError(
            f"the atlases scored different sentences of one corpus: {describe(a, 'A')}, {describe(b, 'B')} "
            "(sentences too long for one model were skipped?); compute both with --long truncate"
        )


def compare_atlases(a: Atlas, b: Atlas, scores: Sequence[str] | None = None) -> AtlasComparison:
    """Compare atlas ``a`` with atlas ``b`` (see `AtlasComparison`), over ``scores`` (names as in
    ``atlas.parquet``; None: every score both have, in A's order).

    Raises `InputError` when the atlases come from different corpora or sentences (`check_same_corpus`),
    or when a score asked for is missing from one of them (the message names which, and what both have).
    """
    check_same_corpus(a, b)
    grids_a, grids_b = score_grids(a), score_grids(b)
    shared = [key for key in grids_a if key in grids_b]
    if scores is None:
        chosen = shared
    else:
        chosen = list(dict.fromkeys(scores))
        for key in chosen:
            if key in shared:
                continue
            where = (
                f"in the atlas of A ({a.model!r}) but not of B ({b.model!r})"
                if key in grids_a
                else f"in the atlas of B ({b.model!r}) but not of A ({a.model!r})"
                if key in grids_b
                else "in neither atlas"
            )
            raise InputError(f"score {key!r} is {where}; both have: {', '.join(shared)}")
    same = (a.layers, a.heads) == (b.layers, b.heads)
    compared = []
    for key in chosen:
        group, grid_a, arcs = grids_a[key]
        grid_b = grids_b[key][1]
        compared.append(ScoreComparison(key, group, grid_a, grid_b, grid_a - grid_b if same else None, arcs))
    left_out = tuple(key for key in [*grids_a, *grids_b] if key not in shared)
    return AtlasComparison(a, b, tuple(compared), tuple(dict.fromkeys(left_out)))


def write_comparison(comparison: AtlasComparison, directory: Path | str) -> tuple[Path, Path]:
    """Write ``atlas-compare.json`` and ``atlas-compare.parquet`` into ``directory`` (created if needed),
    each atomically; the parquet's schema metadata names both models and the corpus."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory = Path(directory)
    with writing(directory):
        directory.mkdir(parents=True, exist_ok=True)
    document = json.dumps(comparison.to_dict(), ensure_ascii=False)
    about = {"a": comparison.a.model, "b": comparison.b.model, "corpus": comparison.a.corpus}
    table = pa.table(comparison.table()).replace_schema_metadata({"attnscope": json.dumps(about)})
    parquet = replace_atomically(directory / COMPARE_PARQUET, lambda path: pq.write_table(table, path))
    return write_text_atomically(directory / COMPARE_JSON, document), parquet
