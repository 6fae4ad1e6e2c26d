"""P3: an in-process build reuses what its planning computed (pieces read and tokenised, sampled batches run
through the model and encoded) instead of doing it again, and stores the same bytes as a build that redoes it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from attnscope.index import BuildOptions
from attnscope.index.build import run_in_process
from attnscope.index.commit import commit
from attnscope.index.extract import plan_sentences
from attnscope.index.plan import make_plan, piece_batches
from attnscope.index.reuse import Reused
from attnscope.index.sources import corpus_record, pieces_and_reader
from attnscope.index.storage import Store

from .test_index_shards import _same_index

OPTIONS = BuildOptions(batch_tokens=32, calibration_batches=3, piece_tokens=8, shard_tokens=16, seed=3)


def _build(corpus, handle, out, options, reused):
    """Plan, every shard here, commit, with the planning's work kept in ``reused`` (or nothing reused)."""
    store = Store.at(out)
    pieces, read = pieces_and_reader(corpus, options.piece_tokens)
    plan = make_plan(store, handle, corpus_record(corpus), pieces, read, options, reused)
    kept = (set(reused.batches), set(reused.pieces)) if reused is not None else None
    run_in_process(store, plan, handle, read, None, reused)
    commit(store, plan)
    return plan, kept


@pytest.mark.parametrize(
    "options",
    [OPTIONS, replace(OPTIONS, approximate="always", attention="recomputed")],
    ids=["exact-attention-stored", "ivf-attention-recomputed"],
)
def test_shards_take_the_planning_batches_and_store_the_same_bytes(default_model, small_corpus, tmp_path, options):
    reused = Reused()
    plan, (batches, pieces) = _build(small_corpus, default_model, tmp_path / "reused", options, reused)
    assert reused.key == plan.key
    assert len(plan.shards) > 1 and len(pieces) > 1  # several pieces sampled, in several shards
    assert len(batches) >= options.calibration_batches
    for piece, number in batches:  # each kept batch is one of its piece's batches
        assert piece in pieces and number < len(_batches_of(default_model, small_corpus, piece, options))
    assert reused.batches == {} and reused.pieces == {} and reused.held_bytes == 0  # all taken by the shards
    _build(small_corpus, default_model, tmp_path / "recomputed", options, None)
    _same_index(tmp_path / "recomputed", tmp_path / "reused")


def _batches_of(handle, corpus, piece, options):
    pieces, read = pieces_and_reader(corpus, options.piece_tokens)
    planned, _ = plan_sentences(handle, read(pieces[piece]), options.long)
    return piece_batches([len(p.tokens) for p in planned], options.batch_tokens, options.seed, piece)


def test_nothing_is_kept_past_the_limit_and_the_bytes_are_the_same(default_model, small_corpus, tmp_path):
    reused = Reused(limit_bytes=0)
    _, (batches, pieces) = _build(small_corpus, default_model, tmp_path / "limited", OPTIONS, reused)
    assert batches == set() and pieces  # pieces are kept (the shard holds them anyway), batches are not
    _build(small_corpus, default_model, tmp_path / "recomputed", OPTIONS, None)
    _same_index(tmp_path / "recomputed", tmp_path / "limited")


def test_a_shard_of_another_plan_takes_nothing(default_model, small_corpus, tmp_path):
    reused = Reused()
    store = Store.at(tmp_path / "a")
    pieces, read = pieces_and_reader(small_corpus, OPTIONS.piece_tokens)
    make_plan(store, default_model, corpus_record(small_corpus), pieces, read, OPTIONS, reused)
    (piece, number), *_ = reused.batches
    assert reused.take_batch("another plan's key", piece, number) is None
    assert reused.take_piece("another plan's key", piece) is None
    assert reused.take_batch(reused.key, piece, number) is not None
