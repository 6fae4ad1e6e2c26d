"""The head atlas as data: every head's pattern scores and relation scores over a corpus, with where
they came from; to and from JSON-ready dicts and a one-row-per-head table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..analysis.patterns import SHARES, PatternScores, label_heads
from ..analysis.probes import ProbeScores
from ..analysis.relations import DIRECTIONS, ROOT
from ..errors import InputError

FORMAT = "attnscope-atlas"
FORMAT_VERSION = 1
SCORES = SHARES + ("entropy",)
"""The pattern scores of a head, in table order."""
ARROWS = {"dependent_to_head": "dependent→head", "head_to_dependent": "head→dependent"}
"""How the two directions of relation scores are written for people."""


@dataclass(frozen=True)
class RelationScores:
    """Per dependency relation (``names``, most frequent first): how often each head's strongest
    word-level attention lands on the right word, in each direction, and the best fixed-offset baseline.

    ``dependent_to_head``/``head_to_dependent`` are (relations, layers, heads) accuracies; ``pairs``
    counts the arcs scored; ``baseline_offset`` is the head's position minus the dependent's (the
    baseline predicts the head at the dependent + offset, the dependent at the head − offset) and
    ``baseline`` its accuracy. ``unaligned`` counts arcs left out because a word had no token.
    """

    names: tuple[str, ...]
    pairs: np.ndarray
    dependent_to_head: np.ndarray
    head_to_dependent: np.ndarray
    baseline: np.ndarray
    baseline_offset: np.ndarray
    unaligned: int = 0

    def accuracy(self, direction: str) -> np.ndarray:
        if direction not in DIRECTIONS:
            raise InputError(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
        return getattr(self, direction)

    def best(self, relation: str, direction: str) -> tuple[int, int, float]:
        """The (layer, head, accuracy) of the head that predicts ``relation`` best in ``direction``
        (the lowest layer, then head, among ties)."""
        scores = self.accuracy(direction)[self.position(relation)]
        layer, head = np.unravel_index(int(np.argmax(scores)), scores.shape)
        return int(layer), int(head), float(scores[layer, head])

    def position(self, relation: str) -> int:
        if relation not in self.names:
            raise InputError(unknown_relation(relation, self.names))
        return self.names.index(relation)

    def select(self, relations: Sequence[str]) -> RelationScores:
        """Only ``relations``, in the order given; an unknown name is an `InputError` listing the known ones."""
        keep = [self.position(name) for name in relations]
        return replace(
            self,
            names=tuple(relations),
            pairs=self.pairs[keep],
            dependent_to_head=self.dependent_to_head[keep],
            head_to_dependent=self.head_to_dependent[keep],
            baseline=self.baseline[keep],
            baseline_offset=self.baseline_offset[keep],
        )


def unknown_relation(relation: str, known: Sequence[str]) -> str:
    """The message for a relation the corpus does not have (root included: it has no head word)."""
    listed = ", ".join(known) if known else "none: it has no dependency annotations"
    if relation.lower() == ROOT:
        return f"relation {relation!r} has no head word to attend to, so it is not scored; the corpus has: {listed}"
    return f"relation {relation!r} is not in the corpus; it has: {listed}"


@dataclass(frozen=True)
class Atlas:
    """Every head of one model's self-attention stack, scored over one corpus.

    ``patterns`` are token-weighted means over every ordinary query token of the corpus (``tokens``
    of them, in ``sentences`` sentences); ``relations`` is None when the corpus has no dependency
    annotations (``notices`` then says so). ``threshold``/``broad_entropy`` made the pattern labels.
    ``probes`` are the synthetic-probe scores (`analysis.probes`: induction, duplicate token, previous
    token, first-token sink), None when none were computed (by default they are for causal models).
    """

    model: str
    model_fingerprint: str
    tokenizer_fingerprint: str
    stack: str
    layers: int
    heads: int
    corpus: str
    corpus_checksum: str
    annotator: str
    sentences: int
    tokens: int
    patterns: PatternScores
    relations: RelationScores | None
    notices: tuple[str, ...] = ()
    threshold: float = 0.5
    broad_entropy: float = 0.75
    seconds: float = 0.0
    probes: ProbeScores | None = None

    def heads_with(self, pattern: str) -> list[tuple[int, int, float]]:
        """The (layer, head, score) of every head labelled ``pattern``, highest score first."""
        found = [
            (layer, h, self.patterns.score(layer, h))
            for layer in range(self.layers)
            for h in range(self.heads)
            if self.patterns.labels[layer][h] == pattern
        ]
        return sorted(found, key=lambda item: (-item[2], item[0], item[1]))

    def select_relations(self, relations: Sequence[str]) -> Atlas:
        """The atlas with only ``relations`` (an `InputError` names the corpus's relations if one is unknown)."""
        if self.relations is None:
            raise InputError(
                f"the corpus {self.corpus!r} has no dependency annotations, so no relation can be "
                f"chosen; leave out the relations to get the pattern scores"
            )
        return replace(self, relations=self.relations.select(relations))

    def select_probes(self, names: Sequence[str]) -> Atlas:
        """The atlas with only the probe scores ``names`` (none: an empty sequence); a name not computed is
        an `InputError` naming those that were."""
        if not names:
            return replace(self, probes=None)
        if self.probes is None:
            raise InputError(
                f"the atlas of {self.model!r} has no probe scores: compute it with probes {', '.join(names)}"
            )
        return replace(self, probes=self.probes.select(names))

    def table(self) -> dict[str, list[Any]]:
        """One row per head (layer-major): layer, head, label, the pattern scores, a column
        ``"probe_<name>"`` per probe score, then for every relation and direction a column
        ``"<relation> <direction>"`` of accuracies."""
        layer, head = np.divmod(np.arange(self.layers * self.heads), self.heads)
        columns: dict[str, list[Any]] = {
            "layer": layer.tolist(),
            "head": head.tolist(),
            "label": [x for row in self.patterns.labels for x in row],
        }
        for name in SCORES:
            columns[name] = getattr(self.patterns, name).reshape(-1).tolist()
        if self.probes is not None:
            for name in self.probes.names:
                columns[f"probe_{name}"] = self.probes.scores[name].reshape(-1).tolist()
        if self.relations is not None:
            for r, name in enumerate(self.relations.names):
                for direction in DIRECTIONS:
                    columns[f"{name} {direction}"] = self.relations.accuracy(direction)[r].reshape(-1).tolist()
        return columns

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: what ``atlas.json`` holds, and what the explorer app's panel reads.

        Scores are nested lists ``[layer][head]`` rounded to 6 decimals.
        """

        def grid(array: np.ndarray) -> list[list[float]]:
            return np.round(np.asarray(array, dtype=np.float64), 6).tolist()

        relations = None
        if self.relations is not None:
            r = self.relations
            relations = [
                {
                    "relation": name,
                    "pairs": int(r.pairs[i]),
                    "baseline": round(float(r.baseline[i]), 6),
                    "baseline_offset": int(r.baseline_offset[i]),
                    **{direction: grid(r.accuracy(direction)[i]) for direction in DIRECTIONS},
                }
                for i, name in enumerate(r.names)
            ]
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "model_fingerprint": self.model_fingerprint,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "stack": self.stack,
            "layers": self.layers,
            "heads": self.heads,
            "corpus": self.corpus,
            "corpus_checksum": self.corpus_checksum,
            "annotator": self.annotator,
            "sentences": self.sentences,
            "tokens": self.tokens,
            "threshold": self.threshold,
            "broad_entropy": self.broad_entropy,
            "seconds": round(self.seconds, 3),
            "patterns": {
                **{name: grid(getattr(self.patterns, name)) for name in SCORES},
                "labels": self.patterns.labels,
            },
            "relations": relations,
            "unaligned_arcs": self.relations.unaligned if self.relations is not None else 0,
            "notices": list(self.notices),
            "probes": self.probes.to_dict() if self.probes is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Atlas:
        """The atlas `to_dict` wrote (labels are recomputed from the scores and thresholds)."""
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not an {FORMAT} version {FORMAT_VERSION} document")
        scores = {name: np.asarray(data["patterns"][name], dtype=np.float64) for name in SCORES}
        threshold, broad = float(data["threshold"]), float(data["broad_entropy"])
        shares = {name: scores[name] for name in SHARES}
        labels = label_heads(shares, scores["entropy"], threshold=threshold, broad_entropy=broad)
        relations = None
        if data["relations"] is not None:
            rows = data["relations"]
            relations = RelationScores(
                names=tuple(row["relation"] for row in rows),
                pairs=np.array([row["pairs"] for row in rows], dtype=np.int64),
                **{
                    direction: np.array([row[direction] for row in rows], dtype=np.float64).reshape(
                        len(rows), data["layers"], data["heads"]
                    )
                    for direction in DIRECTIONS
                },
                baseline=np.array([row["baseline"] for row in rows], dtype=np.float64),
                baseline_offset=np.array([row["baseline_offset"] for row in rows], dtype=np.int64),
                unaligned=int(data.get("unaligned_arcs", 0)),
            )
        return cls(
            model=data["model"],
            model_fingerprint=data["model_fingerprint"],
            tokenizer_fingerprint=data["tokenizer_fingerprint"],
            stack=data["stack"],
            layers=int(data["layers"]),
            heads=int(data["heads"]),
            corpus=data["corpus"],
            corpus_checksum=data["corpus_checksum"],
            annotator=data["annotator"],
            sentences=int(data["sentences"]),
            tokens=int(data["tokens"]),
            patterns=PatternScores(**scores, labels=labels),
            relations=relations,
            notices=tuple(data.get("notices", ())),
            threshold=threshold,
            broad_entropy=broad,
            seconds=float(data.get("seconds", 0.0)),
            probes=ProbeScores.from_dict(data["probes"]) if data.get("probes") else None,
        )
