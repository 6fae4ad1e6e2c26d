"""Reference corpora: annotated sentences read from CoNLL-U treebanks or from raw text through spaCy.

>>> from attnscope.corpus import open_corpus, word_of_tokens
>>> corpus = open_corpus("ewt")                  # UD English EWT dev + test (cached, downloaded once)
>>> corpus.fields                                # ('upos', 'xpos', 'lemma', 'feats', 'deprel')
>>> sentence = corpus.sentences[0]
>>> tokens = attnscope.encode(model, sentence.text)
>>> word_of_tokens(sentence, tokens)             # the word each token belongs to; None for specials
"""

from .align import word_of_tokens
from .conllu import parse_conllu, read_conllu
from .ewt import EWT_ATTRIBUTION, EWT_FILES, EWT_NAME, default_cache_dir, ewt_files
from .opening import open_corpus
from .sentence import METADATA_FIELDS, AnnotatedSentence, Corpus, Word, fields_present
from .spacy_text import load_pipeline, read_text

__all__ = [
    "EWT_ATTRIBUTION", "EWT_FILES", "EWT_NAME", "METADATA_FIELDS", "AnnotatedSentence", "Corpus", "Word",
    "default_cache_dir", "ewt_files", "fields_present", "load_pipeline", "open_corpus", "parse_conllu",
    "read_conllu", "read_text", "word_of_tokens",
]
