"""Computing the head atlas: the model runs over a corpus in length-sorted batches (as an index build
does), and every sentence adds to the pattern sums and the relation tally, so memory stays flat."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from ..analysis.patterns import PatternSums, pattern_sums
from ..analysis.probes import PROBES, ProbeSpec, check_probe_names, run_probes
from ..analysis.relations import ROOT, Arcs, RelationTally, sentence_arcs
from ..capture.engine import capture_batch
from ..capture.inputs import Tokens
from ..capture.loading import ModelHandle
from ..corpus import Corpus
from ..errors import InputError, count
from ..index.extract import plan_batches, plan_sentences
from ..index.manifest import model_fingerprint, tokenizer_fingerprint
from .model import Atlas, RelationScores, unknown_relation

Progress = Callable[[int, int], None]
"""``progress(tokens_done, tokens_total)``, called after every batch."""
NO_DEPENDENCIES = (
    "the corpus {name!r} has no dependency annotations (relations and head words): the "
    "relation scores are skipped; the pattern scores are computed"
)


@dataclass(frozen=True)
class AtlasSentence:
    """One sentence as the atlas scores it: its tokens (``encode(handle, text, truncate=True)``), each
    token's word (None for special tokens), and each word's head word (-1 for the root) and relation."""

    tokens: Tokens
    word_of: list[int | None]
    heads: list[int | None]
    deprels: list[str | None]


@dataclass(frozen=True)
class CorpusInfo:
    """What the atlas records about its corpus: name, checksum of its files, annotator, and notes on
    what tokenisation did (over-long sentences)."""

    name: str
    checksum: str
    annotator: str
    notices: tuple[str, ...] = ()


def relation_counts(sentences: Iterable[AtlasSentence]) -> Counter[str]:
    """How many arcs each dependency relation has (roots and unannotated words left out)."""
    counts: Counter[str] = Counter()
    for sentence in sentences:
        counts.update(
            r
            for h, r in zip(sentence.heads, sentence.deprels)
            if r is not None and h is not None and h >= 0 and r.lower() != ROOT
        )
    return counts


def choose_relations(counts: Counter[str], relations: Sequence[str] | None, corpus: str) -> tuple[str, ...] | None:
    """The relations to score: ``relations`` (each must be in ``counts``) or all of them, most frequent
    first; None when the corpus has none (an `InputError` if some were asked for)."""
    known = tuple(name for name, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    if not known:
        if relations:
            raise InputError(
                f"the corpus {corpus!r} has no dependency annotations (relations and head words), "
                f"so relations ({', '.join(relations)}) cannot be scored; leave them out to get the "
                f"pattern scores"
            )
        return None
    if not relations:
        return known
    for name in relations:
        if name not in counts:
            raise InputError(unknown_relation(name, known))
    return tuple(dict.fromkeys(relations))


def corpus_sentences(
    handle: ModelHandle, corpus: Corpus, long: str = "truncate"
) -> tuple[list[AtlasSentence], CorpusInfo]:
    """Tokenise ``corpus`` for ``handle`` (over-long sentences truncated or skipped, as ``long`` says)."""
    planned, summary = plan_sentences(handle, corpus.sentences, long)
    sentences = []
    for item in planned:
        words = corpus.sentences[item.sentence].words
        sentences.append(AtlasSentence(item.tokens, item.words, [w.head for w in words], [w.deprel for w in words]))
    notices = long_sentence_notices(summary.truncated_sentences, summary.dropped_tokens, summary.skipped_sentences)
    return sentences, CorpusInfo(corpus.name, corpus.checksum, corpus.annotator, notices)


def long_sentence_notices(truncated: int, dropped_tokens: int, skipped: int) -> tuple[str, ...]:
    """What the atlas says about sentences longer than the model takes."""
    notices = []
    if truncated:
        notices.append(
            f"{count(truncated, 'sentence')} longer than the model takes {_was(truncated)} truncated "
            f"({count(dropped_tokens, 'token')} dropped)"
        )
    if skipped:
        notices.append(f"{count(skipped, 'sentence')} longer than the model takes {_was(skipped)} skipped")
    return tuple(notices)


def _was(number: int) -> str:
    return "was" if number == 1 else "were"


def default_probes(handle: ModelHandle) -> tuple[str, ...]:
    """The probe scores an atlas gets when none are named: all of `PROBES` for a causal (decoder) model,
    none for an encoder (bidirectional attention has no "earlier copy" to find; name them to get them)."""
    return PROBES if handle.kind == "decoder" else ()


def with_probes(
    atlas: Atlas, handle: ModelHandle, probes: Sequence[str] | None, spec: ProbeSpec | None = None
) -> Atlas:
    """``atlas`` with the probe scores ``probes`` (None: `default_probes`; empty: none), computed by
    `analysis.probes.run_probes` (with ``spec``, default `ProbeSpec()`) unless it has them already."""
    names = default_probes(handle) if probes is None else check_probe_names(probes)
    if not names:
        return replace(atlas, probes=None)
    have = atlas.probes
    if have is not None and set(names) <= set(have.names) and (spec is None or spec == have.spec):
        return replace(atlas, probes=have.select(names))
    return replace(atlas, probes=run_probes(handle, names, spec))


def compute_atlas(
    handle: ModelHandle,
    corpus: Corpus,
    *,
    relations: Sequence[str] | None = None,
    batch_tokens: int = 4096,
    long: str = "truncate",
    threshold: float = 0.5,
    broad_entropy: float = 0.75,
    progress: Progress | None = None,
    probes: Sequence[str] | None = None,
    probe_spec: ProbeSpec | None = None,
) -> Atlas:
    """Score every head of ``handle``'s self-attention stack over ``corpus`` (see `Atlas`).

    ``relations`` limits the relation scores to those names (each must be in the corpus; root has no
    head word and is never scored); a corpus without dependency annotations gets pattern scores only,
    with a notice. Sentences run ``batch_tokens`` padded tokens at a time. ``probes`` names the
    synthetic-probe scores (None: `default_probes`, all for causal models; empty: none), run on a probe
    of ``probe_spec``'s size and seed; an unknown name is an `InputError` before the model runs.
    """
    names = default_probes(handle) if probes is None else check_probe_names(probes)
    if handle.kind == "encoder-decoder":
        raise InputError(
            f"the head atlas does not cover encoder-decoder models ({handle.name!r}) yet: use an encoder "
            "or a decoder model"
        )
    sentences, info = corpus_sentences(handle, corpus, long)
    atlas = score_sentences(
        handle,
        sentences,
        info,
        relations=relations,
        batch_tokens=batch_tokens,
        threshold=threshold,
        broad_entropy=broad_entropy,
        progress=progress,
    )
    return with_probes(atlas, handle, names, probe_spec)


def score_sentences(
    handle: ModelHandle,
    sentences: Sequence[AtlasSentence],
    corpus: CorpusInfo,
    *,
    relations: Sequence[str] | None = None,
    batch_tokens: int = 4096,
    threshold: float = 0.5,
    broad_entropy: float = 0.75,
    progress: Progress | None = None,
) -> Atlas:
    """The atlas of tokenised ``sentences`` (from `corpus_sentences` or an index's tables)."""
    started = time.perf_counter()
    if not sentences:
        raise InputError(f"corpus {corpus.name!r} has no tokens to score (every sentence was empty or skipped)")
    chosen = choose_relations(relation_counts(sentences), relations, corpus.name)
    shape = handle.stacks[handle.main_stack]
    tally = RelationTally(chosen, shape.layers, shape.heads) if chosen else None
    arcs = [sentence_arcs(s.heads, s.deprels, tally.index) for s in sentences] if tally else None
    sums = _run(handle, sentences, arcs, tally, batch_tokens, progress)
    notices = list(corpus.notices)
    scores = None
    if tally is None or chosen is None:
        notices.insert(0, NO_DEPENDENCIES.format(name=corpus.name))
    else:
        offsets, baseline = tally.baseline()
        scores = RelationScores(
            chosen,
            tally.pairs,
            tally.accuracy("dependent_to_head"),
            tally.accuracy("head_to_dependent"),
            baseline,
            offsets,
            tally.unaligned,
        )
        if tally.unaligned:
            joined = "it joins" if tally.unaligned == 1 else "they join"
            notices.append(
                f"{count(tally.unaligned, 'dependency arc')} {_was(tally.unaligned)} left out: a word "
                f"{joined} has no token (cut by truncation, or a multi-word token's part that shares its "
                "characters)"
            )
    return Atlas(
        model=handle.name,
        model_fingerprint=model_fingerprint(handle.model),
        tokenizer_fingerprint=tokenizer_fingerprint(handle.tokenizer),
        stack=handle.main_stack,
        layers=shape.layers,
        heads=shape.heads,
        corpus=corpus.name,
        corpus_checksum=corpus.checksum,
        annotator=corpus.annotator,
        sentences=len(sentences),
        tokens=sums.rows,
        patterns=sums.scores(threshold=threshold, broad_entropy=broad_entropy),
        relations=scores,
        notices=tuple(notices),
        threshold=threshold,
        broad_entropy=broad_entropy,
        seconds=time.perf_counter() - started,
    )


def _run(
    handle: ModelHandle,
    sentences: Sequence[AtlasSentence],
    arcs: list[Arcs] | None,
    tally: RelationTally | None,
    batch_tokens: int,
    progress: Progress | None,
) -> PatternSums:
    """Run every batch; each sentence's attention is added to the sums and the tally, then dropped."""
    total = sum(len(s.tokens) for s in sentences)
    done = 0
    sums: PatternSums | None = None
    if progress:
        progress(0, total)
    for batch in plan_batches([len(s.tokens) for s in sentences], batch_tokens):
        captures = capture_batch(
            handle,
            [sentences[i].tokens.texts[0] for i in batch],
            fields=["attentions", "allowed"],
            truncate=True,
            top_k=0,
        )
        for i, capture in zip(batch, captures):
            sentence = sentences[i]
            if capture.tokens.ids != sentence.tokens.ids:
                raise InputError(
                    f"sentence {i} tokenises differently than when it was planned; "
                    f"was the tokenizer changed while the atlas ran?"
                )
            stack = capture.stacks[handle.main_stack]
            added = pattern_sums(stack.require("attentions"), sentence.tokens.special, allowed=stack.allowed)
            sums = added if sums is None else sums + added
            if tally is not None and arcs is not None:
                tally.add(stack.require("attentions"), sentence.word_of, arcs[i])
            done += len(sentence.tokens)
        if progress:
            progress(done, total)
    assert sums is not None
    return sums
