"""A tiny random LLaVA saved as a local model directory with a real offline processor.

Word-level tokenizer (unknown words become <unk>), a chat template with an image part, and a
CLIP image processor at 16x16: enough for `load_target(dir)`, prompts with images and
transformers' `generate` on the processor's outputs, in a second.
"""

from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import CLIPImageProcessorPil, LlavaProcessor, PreTrainedTokenizerFast

from targets.tiny import tiny_target

WORDS = ("user", "assistant", ":", "what", "colour", "shape", "is", "it", "the", "image")
TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}"
    "{% endfor %}{% if add_generation_prompt %}assistant : {% endif %}"
)


def save_tiny_llava(directory: Path, seed: int = 0) -> Path:
    image_token = "<image>"
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, image_token: 127}
    vocab |= {word: 4 + index for index, word in enumerate(WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", extra_special_tokens={"image_token": image_token},
        chat_template=TEMPLATE)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 16},
                                              crop_size={"height": 16, "width": 16}),
        tokenizer=tokenizer, patch_size=4, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, image_token=image_token, chat_template=TEMPLATE)
    tiny_target("llava_clip", seed=seed, vocab_size=128).model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
