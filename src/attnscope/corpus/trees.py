"""Dependency trees: the one check every corpus reader's sentences pass, and the repair of parser output.

A sentence's heads are well formed when every word has a head or none has (no dependencies at
all), exactly one word is the root (head -1), every other head is the index of another word of the
same sentence, and following heads from any word reaches the root (no cycles). Gold files that break
this are errors (the CoNLL-U reader names the line); a parser's output is repaired by `repair_heads`,
so that every reader yields well-formed trees whatever the parser did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ROOT = -1
"""The head of a sentence's root word."""


@dataclass(frozen=True)
class TreeProblem:
    """Why a sentence's heads are not a tree: ``kind`` and the 0-based indices of the words involved.

    Kinds: ``"partial"`` (``words`` lack a head while others have one), ``"range"`` (heads that are no
    word of the sentence), ``"self"`` (words headed by themselves), ``"roots"`` (the sentence's roots,
    more than one), ``"cycle"`` (the words of one cycle, in head order from its first word).
    """

    kind: str
    words: tuple[int, ...]

    def message(self, base: int = 1) -> str:
        """What is wrong, naming words by ``index + base`` (1: CoNLL-U word IDs)."""
        ids = [str(w + base) for w in self.words]
        if self.kind == "partial":
            return f"word {ids[0]} has no head while other words of its sentence have one"
        if self.kind == "range":
            return f"word {ids[0]} has a head outside its sentence"
        if self.kind == "self":
            return f"word {ids[0]} is its own head"
        if self.kind == "roots":
            return f"the sentence has {len(ids)} roots (words {', '.join(ids)}); a tree has one"
        return f"words {' → '.join(ids + ids[:1])} form a cycle, which no chain of heads leaves for the root"


def tree_problem(heads: Sequence[int | None]) -> TreeProblem | None:
    """The first reason ``heads`` is not one well-formed tree, or None when it is (or has no heads at all).

    ``heads[i]`` is the index of word i's head, `ROOT` (-1) for the root, None for no head. Checks,
    in this order: heads for all words or none, heads in range, no word headed by itself, no cycle,
    exactly one root. O(words).
    """
    missing = [i for i, head in enumerate(heads) if head is None]
    if len(missing) == len(heads):
        return None
    if missing:
        return TreeProblem("partial", (missing[0],))
    size = len(heads)
    for i, head in enumerate(heads):
        if not (head == ROOT or 0 <= head < size):  # type: ignore[operator]
            return TreeProblem("range", (i,))
        if head == i:
            return TreeProblem("self", (i,))
    cycle = _first_cycle(heads)  # type: ignore[arg-type]
    if cycle:
        return TreeProblem("cycle", tuple(cycle))
    roots = tuple(i for i, head in enumerate(heads) if head == ROOT)
    if len(roots) != 1:
        return TreeProblem("roots", roots)
    return None


def _first_cycle(heads: Sequence[int]) -> list[int]:
    """The words of the first cycle met walking up from each word in turn (from its lowest index); [] if none."""
    state = [0] * len(heads)  # 0: not seen, 1: on the current walk, 2: reaches a root or a known cycle
    for start in range(len(heads)):
        path, node = [], start
        while 0 <= node < len(heads) and state[node] == 0:
            state[node] = 1
            path.append(node)
            node = heads[node]
        if 0 <= node < len(heads) and state[node] == 1:
            cycle = path[path.index(node) :]
            first = cycle.index(min(cycle))
            return cycle[first:] + cycle[:first]
        for visited in path:
            state[visited] = 2
    return []


def repair_heads(heads: Sequence[int | None]) -> tuple[list[int], tuple[int, ...]]:
    """One well-formed tree made from a parser's ``heads``, and the words whose head it changed.

    ``heads[i]``: the parser's head of word i among the sentence's words, `ROOT` for a root, None for
    a word whose head lies outside the sentence (another sentence, or a chain of non-word tokens).
    The repair, in order: a head that is out of range, the word itself or None detaches the word;
    each cycle is cut at its lowest-indexed word, which detaches it; of the parser's roots (or, if
    it left none, of the detached words) the one heading the most words becomes the sentence's root
    (ties: the first), and every other root or detached word is attached to it. A well-formed input
    comes back unchanged, with no changed words. (A sentence the parser did not annotate at all is
    no input for this: its words keep no heads.)
    """
    size = len(heads)
    if size == 0:
        return [], ()
    fixed: list[int | None] = [
        head if head is not None and (head == ROOT or 0 <= head < size) and head != i else None
        for i, head in enumerate(heads)
    ]
    while True:
        cycle = _first_cycle([ROOT if h is None else h for h in fixed])
        if not cycle:
            break
        fixed[min(cycle)] = None
    sizes = _subtree_sizes([ROOT if h is None else h for h in fixed])
    roots = [i for i, h in enumerate(fixed) if h == ROOT] or [i for i, h in enumerate(fixed) if h is None]
    main = max(roots, key=lambda i: (sizes[i], -i))
    result = [ROOT if i == main else (main if h is None or h == ROOT else h) for i, h in enumerate(fixed)]
    changed = tuple(i for i, (before, after) in enumerate(zip(heads, result)) if before != after)
    return result, changed


def _subtree_sizes(heads: Sequence[int]) -> list[int]:
    """How many words each word heads, itself included, in a forest (no cycles; roots have head `ROOT`)."""
    sizes = [1] * len(heads)
    depth: list[int | None] = [None] * len(heads)
    for i in range(len(heads)):
        path, node = [], i
        while depth[node] is None and heads[node] != ROOT:
            path.append(node)
            node = heads[node]
        found = depth[node]
        known = found if found is not None else 0
        depth[node] = known
        for step, visited in enumerate(reversed(path), 1):
            depth[visited] = known + step
    for i in sorted(range(len(heads)), key=lambda i: -(depth[i] or 0)):  # deepest first: children before heads
        if heads[i] != ROOT:
            sizes[heads[i]] += sizes[i]
    return sizes
