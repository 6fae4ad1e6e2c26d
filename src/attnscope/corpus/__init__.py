"""Reference corpora: annotated sentences read from CoNLL-U treebanks.

>>> from attnscope.corpus import read_conllu, word_of_tokens
>>> sentence = next(read_conllu("en_ewt-ud-dev.conllu"))
>>> tokens = attnscope.encode(model, sentence.text)
>>> word_of_tokens(sentence, tokens)             # the word each token belongs to; None for specials
"""

from .align import word_of_tokens
from .conllu import parse_conllu, read_conllu
from .sentence import METADATA_FIELDS, AnnotatedSentence, Corpus, Word, fields_present

__all__ = [
    "METADATA_FIELDS", "AnnotatedSentence", "Corpus", "Word", "fields_present", "parse_conllu", "read_conllu",
    "word_of_tokens",
]
