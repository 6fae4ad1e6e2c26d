"""A small but really trained spaCy pipeline for the corpus tests, trained on UD English EWT dev in bounded time.

tok2vec (shared, narrow) + tagger (XPOS) + morphologizer (UPOS, FEATS) + trainable lemmatizer +
parser (dependencies and sentence boundaries), then an entity ruler with a few patterns, so that
every field `read_text` fills comes from a real component. Nothing is downloaded.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from attnscope.corpus import AnnotatedSentence, read_conllu

from .corpus_helpers import EWT_DEV

WIDTH = 64
TOK2VEC = {"@architectures": "spacy.HashEmbedCNN.v2", "width": WIDTH, "depth": 2, "embed_size": 2000,
           "window_size": 1, "maxout_pieces": 2, "subword_features": True, "pretrained_vectors": None}
LISTENER = {"@architectures": "spacy.Tok2VecListener.v1", "width": WIDTH, "upstream": "tok2vec"}
TAGGER = {"@architectures": "spacy.Tagger.v2", "nO": None, "normalize": False, "tok2vec": LISTENER}
PARSER = {"@architectures": "spacy.TransitionBasedParser.v2", "state_type": "parser", "extra_state_tokens": False,
          "hidden_width": WIDTH, "maxout_pieces": 2, "use_upper": True, "nO": None, "tok2vec": LISTENER}
ENTITY_PATTERNS = [
    {"label": "GPE", "pattern": "Washington"},
    {"label": "GPE", "pattern": "Baghdad"},
    {"label": "PERSON", "pattern": [{"LOWER": "john"}, {"LOWER": "smith"}]},
    {"label": "ORG", "pattern": [{"LOWER": "united"}, {"LOWER": "nations"}]},
]
SENTENCES_PER_DOC = 4  # several sentences per training doc, so that the parser learns where sentences end
TRAINING_SECONDS = 60.0
MAX_EPOCHS = 12


def untrained_pipeline() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec", config={"model": TOK2VEC})
    nlp.add_pipe("tagger", config={"model": TAGGER})
    nlp.add_pipe("morphologizer", config={"model": TAGGER})
    nlp.add_pipe("trainable_lemmatizer", name="lemmatizer", config={"model": TAGGER, "backoff": "orth"})
    nlp.add_pipe("parser", config={"model": PARSER})
    return nlp


def splittable(sentence: AnnotatedSentence) -> bool:
    """Whether the words tile the text without overlap (true unless a multi-word token's words share its span)."""
    return all(a.end <= b.start for a, b in zip(sentence.words, sentence.words[1:]))


def gold_doc(nlp: Language, sentences: list[AnnotatedSentence], annotated: bool = True) -> Doc:
    """One Doc of consecutive gold sentences (tokens as the treebank has them), annotated or bare."""
    words, spaces, tags, pos, morphs, lemmas, heads, deps, starts = ([] for _ in range(9))
    for number, sentence in enumerate(sentences):
        base = len(words)
        for i, word in enumerate(sentence.words):
            if i + 1 < len(sentence.words):
                spaces.append(sentence.words[i + 1].start > word.end)
            else:  # a space between sentences, none after the last
                spaces.append(number + 1 < len(sentences))
            words.append(word.form)
            tags.append(word.xpos or "_")
            pos.append(word.upos or "X")
            morphs.append(word.feats or "")
            lemmas.append(word.lemma or word.form)
            heads.append(base + (i if word.head in (None, -1) else word.head))
            deps.append("ROOT" if word.head in (None, -1) else (word.deprel or "dep"))
            starts.append(i == 0)
    if not annotated:
        return Doc(nlp.vocab, words=words, spaces=spaces)
    return Doc(nlp.vocab, words=words, spaces=spaces, tags=tags, pos=pos, morphs=morphs, lemmas=lemmas,
               heads=heads, deps=deps, sent_starts=starts)


def training_examples(nlp: Language, path: Path) -> list[Example]:
    sentences = [s for s in read_conllu(path) if splittable(s)]
    groups = [sentences[i:i + SENTENCES_PER_DOC] for i in range(0, len(sentences), SENTENCES_PER_DOC)]
    return [Example(gold_doc(nlp, group, annotated=False), gold_doc(nlp, group)) for group in groups]


def train(out: Path, seconds: float = TRAINING_SECONDS) -> tuple[Path, dict[str, float]]:
    """Train on EWT dev for at most ``seconds`` (whole epochs), add the entity ruler, save to ``out``."""
    spacy.util.fix_random_seed(0)
    started = time.perf_counter()
    nlp = untrained_pipeline()
    examples = training_examples(nlp, EWT_DEV)
    optimizer = nlp.initialize(lambda: examples)
    shuffler = random.Random(0)
    epochs = 0
    while epochs < MAX_EPOCHS:
        shuffler.shuffle(examples)
        for batch in spacy.util.minibatch(examples, size=8):
            nlp.update(batch, sgd=optimizer, drop=0.1)
        epochs += 1
        if time.perf_counter() - started > seconds * epochs / (epochs + 1):  # the next epoch would overrun
            break
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(ENTITY_PATTERNS)
    nlp.meta.update(name="attnscope_test", version="0.0.1")
    nlp.to_disk(out)
    return out, {"seconds": time.perf_counter() - started, "epochs": epochs}


@pytest.fixture(scope="session")
def trained_pipeline(tmp_path_factory) -> tuple[Path, dict[str, float]]:
    """(directory of the saved trained pipeline, training facts: seconds and epochs)."""
    return train(tmp_path_factory.mktemp("spacy") / "en_attnscope_test")
