"""The head atlas (B2): every head's attention patterns and dependency-relation scores over a corpus.

>>> from attnscope.atlas import compute_atlas, atlas_for_index
>>> atlas = compute_atlas(attnscope.load(), open_corpus("ewt"))
>>> atlas.heads_with("previous")[:2]                       # [(layer, head, share), ...]
>>> atlas.relations.best("nsubj", "dependent_to_head")     # (layer, head, accuracy)
>>> atlas_for_index("ewt-index", model).to_dict()          # computed once, cached as ewt-index/atlas.json
>>> compare_atlases(atlas, other).score("previous").most_changed(3)   # two models' atlases of one corpus
"""

from .compare import AtlasComparison, HeadChange, ScoreComparison, compare_atlases, write_comparison
from .compute import AtlasSentence, CorpusInfo, compute_atlas, corpus_sentences, score_sentences
from .model import ARROWS, SCORES, Atlas, RelationScores
from .store import (
    ATLAS_HTML,
    ATLAS_JSON,
    ATLAS_PARQUET,
    AtlasFormatError,
    atlas_for_index,
    cached_atlas,
    read_atlas,
    write_atlas,
)

__all__ = [
    "ARROWS",
    "ATLAS_HTML",
    "ATLAS_JSON",
    "ATLAS_PARQUET",
    "SCORES",
    "Atlas",
    "AtlasComparison",
    "AtlasFormatError",
    "AtlasSentence",
    "CorpusInfo",
    "HeadChange",
    "RelationScores",
    "ScoreComparison",
    "atlas_for_index",
    "cached_atlas",
    "compare_atlases",
    "compute_atlas",
    "corpus_sentences",
    "read_atlas",
    "score_sentences",
    "write_atlas",
    "write_comparison",
]
