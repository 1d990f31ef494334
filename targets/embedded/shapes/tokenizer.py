"""The word-level tokenizer of `shapes`, built offline with `tokenizers` from the training text.

Words carry a leading "▁" (Metaspace) and punctuation is split off, so "a red circle." is
["▁a", "▁red", "▁circle", "."] and decoding gives back the exact text. The vocabulary is every
piece of the corpus, most frequent first (ties alphabetical), so the build is deterministic.
"""

from collections import Counter
from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, END = "<pad>", "<unk>", "<s>", "<|end|>"
IMAGE, USER, ASSISTANT = "<image>", "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = (PAD, UNK, BOS, END, IMAGE, USER, ASSISTANT)

# One user/assistant exchange per message; an image part becomes the processor's image token run.
# `<|end|>` closes every message and is the end-of-sequence token generation stops on.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|user|>{% else %}<|assistant|>{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
        pre_tokenizers.Punctuation(behavior="isolated"),
    ])


def build_tokenizer(corpus: Iterable[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose vocabulary covers every piece of `corpus`."""
    pre_tokenizer = _pre_tokenizer()
    counts: Counter[str] = Counter()
    for text in corpus:
        counts.update(piece for piece, _ in pre_tokenizer.pre_tokenize_str(text))
    words = sorted(counts, key=lambda word: (-counts[word], word))
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + tuple(words))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizer
    core.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    # Registered on the core so they are matched before pre-tokenization (never split into "<", "|").
    core.add_special_tokens([AddedToken(token, special=True) for token in SPECIAL_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=END,
        extra_special_tokens={"image_token": IMAGE},
        padding_side="left",  # batched generation pads on the left
        chat_template=CHAT_TEMPLATE,
    )
    return tokenizer
