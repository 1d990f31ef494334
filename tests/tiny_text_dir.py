"""A tiny random Llama saved as a local model directory with a word-level tokenizer and a chat
template: a text target of your own, as `load_target(dir)` reads it, in a second. 4 layers, so
that spaces that rank intermediate layers by entropy (dream_s, dream) have some to rank."""

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from targets.tiny import tiny_target

WORDS = ("user", "assistant", "system", ":", "how", "do", "i", "cook", "rice", "pasta", "travel",
         "to", "rome", "paris", "what", "is", "a", "good", "team", "sport", "the", "best", "way")
TEMPLATE = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
            "{% if add_generation_prompt %}assistant : {% endif %}")


def save_tiny_text_model(directory: Path, seed: int = 0) -> Path:
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    vocab |= {word: 4 + index for index, word in enumerate(WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", chat_template=TEMPLATE)
    config = tiny_target("llama", vocab_size=128).model.config
    config.num_hidden_layers = 4
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
