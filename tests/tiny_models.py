"""Tiny randomly initialised models of many architectures, built from configs, with real trained tokenizers.

Nothing is downloaded: tokenizers are trained on EWT sentences from ``../shared/data`` plus a few
non-ASCII words (byte-level BPE for GPT-2/RoBERTa/BART, Llama-3-style byte-level BPE for SmolLM2,
SentencePiece-style BPE with byte fallback for Llama/Mistral/Gemma-2/GPT-OSS, unigram with "▁" for
T5/ALBERT/XLNet, a SentencePiece model for MarianMT, BPE with XLM's "</w>" word ends) or reuse the default
model's WordPiece vocabulary (BERT/DistilBERT/ELECTRA/BERT2BERT). Each model is saved to a
directory and loaded back through ``attnscope.load`` exactly as a user's local checkpoint would be.
`ARCHITECTURES` are those the capture engine supports (tests run every one); `OUTPUT_ATTENTIONS_ONLY` are
built for BertViz's notebooks, whose views take ``model(..., output_attentions=True)``'s attentions.
"""

from __future__ import annotations

import io
import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from attnscope.capture.loading import default_model_path, quiet_transformers

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EWT_DEV = SHARED_DATA / "ud_english_ewt" / "en_ewt-ud-dev.conllu"

SMALL = dict(
    hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=48, max_position_embeddings=128
)
SEQ2SEQ_SMALL = dict(  # BART-style encoder-decoders: a decoder one layer deeper than its encoder
    d_model=32,
    encoder_layers=2,
    decoder_layers=3,
    encoder_attention_heads=4,
    decoder_attention_heads=4,
    encoder_ffn_dim=48,
    decoder_ffn_dim=48,
    max_position_embeddings=128,
)


# A few words outside ASCII, repeated so that BPE learns them whole as real vocabularies do (é, ï, 東, 京),
# while characters it never saw (😀) stay split into bytes.
MULTILINGUAL = ["a naïve café", "the café in Zürich", "東京 and 京都", "naïve"] * 25

# The pre-tokenizer regex of Llama-3 and SmolLM2 (contractions, letters, single digits, punctuation, spaces).
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def training_sentences() -> list[str]:
    return [line[len("# text = ") :].strip() for line in EWT_DEV.open(encoding="utf-8") if line.startswith("# text = ")]


def _byte_bpe(specials: list[str], llama3: bool = False) -> Tokenizer:
    """Byte-level BPE: GPT-2's (its own regex) or Llama-3's (a Split regex, then bytes without a regex)."""
    tok = Tokenizer(models.BPE())
    if llama3:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(training_sentences() + MULTILINGUAL, trainer)
    return tok


def _unigram(specials: list[str]) -> Tokenizer:
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(
        training_sentences(), trainers.UnigramTrainer(vocab_size=600, special_tokens=specials, unk_token="<unk>")
    )
    return tok


def _pair_template(tok: Tokenizer, cls: str, sep: str) -> None:
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))],
    )


def wordpiece() -> transformers.PreTrainedTokenizerBase:
    return transformers.AutoTokenizer.from_pretrained(default_model_path())


def gpt2_tokenizer():
    return transformers.GPT2TokenizerFast(
        tokenizer_object=_byte_bpe(["<|endoftext|>"]),
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=128,
    )


def roberta_like_tokenizer(cls=transformers.RobertaTokenizerFast):
    return cls(
        tokenizer_object=_byte_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"]),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=128,
    )


def llama_tokenizer():
    """Llama-2's kind: SentencePiece BPE over "▁"-marked words, with byte fallback: a character the
    vocabulary lacks becomes its UTF-8 bytes, tokens ``<0x00>``..``<0xFF>``."""
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(models.BPE(byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.train_from_iterator(
        training_sentences() + MULTILINGUAL,
        trainers.BpeTrainer(
            vocab_size=600 + len(bytes_), special_tokens=["<unk>", "<s>", "</s>", *bytes_], limit_alphabet=200
        ),
    )
    state = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    return transformers.LlamaTokenizer(
        vocab=state["vocab"],
        merges=merges,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        add_bos_token=True,
        model_max_length=128,
    )


def llama3_tokenizer():
    """Llama-3's and SmolLM2's kind: byte-level BPE behind a Split regex, read as a generic fast tokenizer."""
    tok = _byte_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], llama3=True)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=128,
    )


def t5_tokenizer():
    return transformers.T5TokenizerFast(
        tokenizer_object=_unigram(["<pad>", "</s>", "<unk>"]),
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_ids=0,
        model_max_length=128,
    )


def albert_tokenizer():
    tok = _unigram(["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"])
    _pair_template(tok, "[CLS]", "[SEP]")
    return transformers.AlbertTokenizerFast(
        tokenizer_object=tok,
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=128,
    )


def xlnet_tokenizer():
    """XLNet's kind: a unigram vocabulary over "▁"-marked words, ``<sep> <cls>`` at the end of the input."""
    tok = _unigram(["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>"])
    vocab = [tuple(piece) for piece in json.loads(tok.to_str())["model"]["vocab"]]
    return transformers.XLNetTokenizer(vocab=vocab, model_max_length=128)


def xlm_tokenizer():
    """XLM's kind: lowercased, accents stripped, BPE whose word-final pieces end in ``</w>``, ``<s> A </s>``.

    A generic fast tokenizer: transformers' own ``XLMTokenizer`` needs Moses (sacremoses) besides."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    tok.train_from_iterator(
        training_sentences(),
        trainers.BpeTrainer(
            vocab_size=600, special_tokens=["<s>", "</s>", "<pad>", "<unk>"], end_of_word_suffix="</w>"
        ),
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1", special_tokens=[("<s>", 0), ("</s>", 1)]
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=128,
    )


def marian_tokenizer():
    """MarianMT's own tokenizer over one SentencePiece unigram model for both languages (``</s>`` is 0,
    ``<unk>`` 1, ``<pad>`` last), as the opus-mt checkpoints ship it: source.spm, target.spm, vocab.json."""
    import sentencepiece

    proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(training_sentences()),
        model_writer=proto,
        vocab_size=600,
        model_type="unigram",
        eos_id=0,
        unk_id=1,
        bos_id=-1,
        pad_id=-1,
        minloglevel=2,
    )
    pieces = sentencepiece.SentencePieceProcessor(model_proto=proto.getvalue())
    vocab = {pieces.id_to_piece(i): i for i in range(pieces.get_piece_size())}
    vocab["<pad>"] = len(vocab)
    with tempfile.TemporaryDirectory(prefix="marian-spm-") as name:  # read at once; saving writes the models again
        folder = Path(name)
        for spm in ("source.spm", "target.spm"):
            (folder / spm).write_bytes(proto.getvalue())
        (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        with quiet_transformers(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Recommended: pip install sacremoses")  # Moses is optional for it
            return transformers.MarianTokenizer(
                source_spm=str(folder / "source.spm"),
                vocab=str(folder / "vocab.json"),
                target_spm=str(folder / "target.spm"),
                model_max_length=128,
            )


def _bert_like(config_class, model_class, **extra) -> Callable[[int], tuple]:
    def build(vocab: int):
        return config_class(vocab_size=vocab, **SMALL, **extra), model_class

    return build


# name -> (tokenizer factory, config+class builder). The model class decides whether an LM head exists.
ARCHITECTURES: dict[str, tuple[Callable, Callable[[int], tuple]]] = {
    "bert": (wordpiece, _bert_like(transformers.BertConfig, transformers.BertForMaskedLM)),
    "roberta": (
        roberta_like_tokenizer,
        lambda v: (
            transformers.RobertaConfig(
                vocab_size=v,
                pad_token_id=1,
                bos_token_id=0,
                eos_token_id=2,
                type_vocab_size=1,
                **dict(SMALL, max_position_embeddings=130),
            ),
            transformers.RobertaForMaskedLM,
        ),
    ),
    "distilbert": (
        wordpiece,
        lambda v: (
            transformers.DistilBertConfig(
                vocab_size=v, dim=32, n_heads=4, n_layers=2, hidden_dim=48, max_position_embeddings=128
            ),
            transformers.DistilBertForMaskedLM,
        ),
    ),
    "albert": (
        albert_tokenizer,
        lambda v: (
            transformers.AlbertConfig(vocab_size=v, embedding_size=16, pad_token_id=0, **SMALL),
            transformers.AlbertForMaskedLM,
        ),
    ),
    "electra": (
        wordpiece,
        lambda v: (
            transformers.ElectraConfig(vocab_size=v, embedding_size=16, **SMALL),
            transformers.ElectraForMaskedLM,
        ),
    ),
    "gpt2": (
        gpt2_tokenizer,
        lambda v: (
            transformers.GPT2Config(
                vocab_size=v, n_embd=32, n_head=4, n_layer=2, n_positions=128, bos_token_id=0, eos_token_id=0
            ),
            transformers.GPT2LMHeadModel,
        ),
    ),
    "llama": (
        llama_tokenizer,
        lambda v: (
            transformers.LlamaConfig(vocab_size=v, num_key_value_heads=2, bos_token_id=1, eos_token_id=2, **SMALL),
            transformers.LlamaForCausalLM,
        ),
    ),
    "smollm2": (
        llama3_tokenizer,
        lambda v: (
            transformers.LlamaConfig(
                vocab_size=v, num_key_value_heads=2, bos_token_id=1, eos_token_id=2, pad_token_id=0, **SMALL
            ),
            transformers.LlamaForCausalLM,
        ),
    ),
    "mistral": (
        llama_tokenizer,
        lambda v: (
            transformers.MistralConfig(
                vocab_size=v, num_key_value_heads=2, sliding_window=4, bos_token_id=1, eos_token_id=2, **SMALL
            ),
            transformers.MistralForCausalLM,
        ),
    ),
    "gemma2": (
        llama_tokenizer,
        lambda v: (
            transformers.Gemma2Config(
                vocab_size=v,
                num_key_value_heads=2,
                head_dim=8,
                sliding_window=4,
                attn_logit_softcapping=0.5,
                query_pre_attn_scalar=8,
                bos_token_id=1,
                eos_token_id=2,
                pad_token_id=0,
                **SMALL,
            ),
            transformers.Gemma2ForCausalLM,
        ),
    ),
    "gpt_oss": (
        llama_tokenizer,
        lambda v: (
            transformers.GptOssConfig(
                vocab_size=v,
                num_key_value_heads=2,
                head_dim=8,
                num_local_experts=2,
                num_experts_per_tok=1,
                sliding_window=4,
                bos_token_id=1,
                eos_token_id=2,
                pad_token_id=0,
                **SMALL,
            ),
            transformers.GptOssForCausalLM,
        ),
    ),
    "bart": (
        lambda: roberta_like_tokenizer(transformers.BartTokenizerFast),
        lambda v: (
            transformers.BartConfig(
                vocab_size=v,
                **SEQ2SEQ_SMALL,
                pad_token_id=1,
                bos_token_id=0,
                eos_token_id=2,
                decoder_start_token_id=2,
            ),
            transformers.BartForConditionalGeneration,
        ),
    ),
    "t5": (
        t5_tokenizer,
        lambda v: (
            transformers.T5Config(
                vocab_size=v,
                d_model=32,
                d_kv=8,
                d_ff=48,
                num_layers=2,
                num_decoder_layers=3,
                num_heads=4,
                relative_attention_num_buckets=8,
                pad_token_id=0,
                eos_token_id=1,
                decoder_start_token_id=0,
            ),
            transformers.T5ForConditionalGeneration,
        ),
    ),
    "bert2bert": (
        wordpiece,
        lambda v: (
            transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
                transformers.BertConfig(vocab_size=v, **SMALL),
                transformers.BertConfig(
                    vocab_size=v, is_decoder=True, add_cross_attention=True, **dict(SMALL, num_hidden_layers=3)
                ),
                decoder_start_token_id=101,
                pad_token_id=0,
            ),
            transformers.EncoderDecoderModel,
        ),
    ),
}


OUTPUT_ATTENTIONS_ONLY: dict[str, tuple[Callable, Callable[[int], tuple]]] = {
    "xlnet": (
        xlnet_tokenizer,
        lambda v: (
            transformers.XLNetConfig(
                vocab_size=v,
                d_model=32,
                n_layer=2,
                n_head=4,
                d_inner=48,
                pad_token_id=5,
                bos_token_id=1,
                eos_token_id=2,
            ),
            transformers.XLNetLMHeadModel,
        ),
    ),
    "xlm": (
        xlm_tokenizer,
        lambda v: (
            transformers.XLMConfig(
                vocab_size=v,
                emb_dim=32,
                n_layers=2,
                n_heads=4,
                max_position_embeddings=128,
                bos_index=0,
                eos_index=1,
                pad_index=2,
                unk_index=3,
                pad_token_id=2,
                bos_token_id=0,
            ),
            transformers.XLMWithLMHeadModel,
        ),
    ),
    "marian": (
        marian_tokenizer,
        lambda v: (
            transformers.MarianConfig(
                vocab_size=v,
                **SEQ2SEQ_SMALL,
                pad_token_id=v - 1,
                eos_token_id=0,
                decoder_start_token_id=v - 1,
            ),
            transformers.MarianMTModel,
        ),
    ),
}
"""Architectures built for BertViz's notebooks (XLNet and XLM are not on transformers' attention interface)."""


def build_model(name: str, directory: Path, *, head: bool = True, seed: int = 0) -> Path:
    """Save a tiny random ``name`` model (with its LM head unless ``head=False``) to ``directory``."""
    make_tokenizer, make_config = {**ARCHITECTURES, **OUTPUT_ATTENTIONS_ONLY}[name]
    tokenizer = make_tokenizer()
    config, model_class = make_config(len(tokenizer))
    torch.manual_seed(seed)
    model = model_class(config) if head else transformers.AutoModel.from_config(config)
    model.eval()
    with quiet_transformers():
        model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
