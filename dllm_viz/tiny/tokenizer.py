"""The built-in model's word-level tokenizer, built with ``tokenizers`` from the task's lexicon.

Why this shape:

* The word-problem language is closed (:func:`dllm_viz.tasks.wordproblems.lexicon`), so a
  word-level vocabulary of ~200 tokens covers it and keeps the output head cheap.
* Numbers are split into digits, so arithmetic is learnable and any number is encodable.
* Word boundaries are carried SentencePiece-style: a token that follows a space starts with
  ``▁`` (``"▁Tom"``, ``"▁1"``, then ``"2"`` for the rest of ``12``). The ``Metaspace`` decoder
  then rebuilds the exact text (``"Tom has 12 apples."``), and a single token decodes to its
  bare word for the token grid.
* Every text gets a leading ``▁`` (``prepend_scheme="always"``), so encoding a prompt and a
  response separately equals encoding ``prompt + " " + response``: the training pairs and the
  engine's canvas agree token for token.
* The chat template is the prompt format the model is trained on (``Q: <question> A:``);
  the engine's backend applies it exactly like a hub instruct model's.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from ..tasks.wordproblems import lexicon

PAD, UNK, MASK, EOS = "[PAD]", "[UNK]", "[MASK]", "[EOS]"
SPECIAL_TOKENS = (PAD, UNK, MASK, EOS)
SPACE = "▁"
# One piece per word, per digit, per punctuation mark; "####" (GSM8K's answer marker) whole.
PIECE_PATTERN = rf"{SPACE}?####|{SPACE}?[A-Za-z]+|{SPACE}?[0-9]|{SPACE}?[^\sA-Za-z0-9{SPACE}]"
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}Q: {{ message['content'] }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %} A:{% endif %}"
)
PROMPT_WORDS = ("Q:", "A:")  # the words CHAT_TEMPLATE adds around a question


def _pipeline(vocab: dict[str, int]) -> Tokenizer:
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(PIECE_PATTERN), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    return tok


def vocabulary(texts: list[str] | None = None) -> list[str]:
    """Sorted pieces of ``texts`` (default: the word-problem lexicon plus the prompt words),
    plus every digit with and without a leading ``▁``; special tokens not included."""
    texts = lexicon() + list(PROMPT_WORDS) if texts is None else texts
    probe = _pipeline({UNK: 0})
    pieces: set[str] = set()
    for text in texts:
        normalized = probe.normalizer.normalize_str(text)
        if normalized:
            pieces.update(p for p, _ in probe.pre_tokenizer.pre_tokenize_str(normalized))
    pieces.update(str(d) for d in range(10))
    pieces.update(SPACE + str(d) for d in range(10))
    return sorted(pieces)


def build_tokenizer(texts: list[str] | None = None, model_max_length: int = 256) -> PreTrainedTokenizerFast:
    """A ``PreTrainedTokenizerFast`` with [PAD]/[UNK]/[MASK]/[EOS], left padding and the chat template.

    Args:
        texts: texts whose words make up the vocabulary (default: the task lexicon).
        model_max_length: longest prompt + generation the model is built for.

    >>> tok = build_tokenizer()
    >>> ids = tok("Tom has 12 apples. #### 12", add_special_tokens=False)["input_ids"]
    >>> tok.convert_ids_to_tokens(ids)[:5], tok.decode(ids)
    (['▁Tom', '▁has', '▁1', '2', '▁apples'], 'Tom has 12 apples. #### 12')
    """
    if model_max_length < 8:
        raise ValueError(f"model_max_length ({model_max_length}) must be ≥ 8")
    words = vocabulary(texts)
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *words])}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=_pipeline(vocab),
        pad_token=PAD,
        unk_token=UNK,
        mask_token=MASK,
        eos_token=EOS,
        model_max_length=model_max_length,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast
