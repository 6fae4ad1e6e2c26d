"""Reference corpora: annotated sentences read from CoNLL-U treebanks or from raw text through spaCy.

>>> from attnscope.corpus import read_conllu, word_of_tokens
>>> sentence = next(read_conllu("en_ewt-ud-dev.conllu"))
>>> tokens = attnscope.encode(model, sentence.text)
>>> word_of_tokens(sentence, tokens)             # the word each token belongs to; None for specials
"""

from .align import word_of_tokens
from .conllu import parse_conllu, read_conllu
from .sentence import METADATA_FIELDS, AnnotatedSentence, Corpus, Word, fields_present
from .spacy_text import load_pipeline, read_text

__all__ = [
    "METADATA_FIELDS", "AnnotatedSentence", "Corpus", "Word", "fields_present", "load_pipeline", "parse_conllu",
    "read_conllu", "read_text", "word_of_tokens",
]
