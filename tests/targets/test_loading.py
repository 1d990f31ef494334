"""`load_target` on directories, `prepare` through a tokenizer or processor, and their errors."""

import json

import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    CLIPImageProcessorPil,
    LlavaProcessor,
    PreTrainedTokenizerFast,
    Qwen2VLImageProcessorPil,
)

from targets import TargetError, load_target, processors
from targets.tiny import tiny_inputs, tiny_target

VOCAB_SIZE = 128
IMAGE_TOKEN = "<image>"
WORDS = ["user", "assistant", ":", "what", "is", "this", "shape", "red", "circle"]
# A chat template in the shape processors ship: content parts, images as placeholders.
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : "
    "{% if m['content'] is string %}{{ m['content'] }} {% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
    "{% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)


def word_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer built offline whose image token is the tiny VLMs' placeholder id."""
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, IMAGE_TOKEN: VOCAB_SIZE - 1}
    vocab.update({word: 4 + index for index, word in enumerate(WORDS)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        chat_template=CHAT_TEMPLATE,
    )


@pytest.fixture
def llava_dir(tmp_path):
    target = tiny_target("llava_clip", vocab_size=VOCAB_SIZE)
    target.model.save_pretrained(tmp_path)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}
        ),
        tokenizer=word_tokenizer(),
        patch_size=4,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        image_token=IMAGE_TOKEN,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(tmp_path)
    return tmp_path, target


def test_directory_with_processor_prepares_prompt_and_image(llava_dir):
    path, original = llava_dir
    target = load_target(path)
    assert (target.family, target.is_vlm, target.path) == ("llava", True, str(path))
    assert target.processor is not None and target.tokenizer is not None
    assert target.fingerprint == original.fingerprint

    prepared = target.prepare(prompt="what is this", images=[Image.new("RGB", (20, 24), "red")])
    words = target.tokenizer.convert_ids_to_tokens(prepared.input_ids[0].tolist())
    assert words[:2] == ["user", ":"] and words[-2:] == ["assistant", ":"]
    assert int(prepared.image_mask.sum()) == 16
    assert prepared.image_mask[0].tolist() == [word == IMAGE_TOKEN for word in words]

    out = target.forward(
        prepared.input_ids, cache=target.new_cache(), model_kwargs=prepared.model_kwargs
    )
    with torch.no_grad():
        reference = target.model(input_ids=prepared.input_ids, **prepared.model_kwargs)
    torch.testing.assert_close(out.logits, reference.logits)


def test_unreadable_image_names_the_file(llava_dir, tmp_path_factory):
    path, _ = llava_dir
    broken = tmp_path_factory.mktemp("images") / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(TargetError, match="broken.png") as error:
        load_target(path).prepare(prompt="what is this", images=[broken])
    assert "\n" not in str(error.value)


def test_text_directory_uses_the_tokenizers_chat_template(tmp_path):
    original = tiny_target("llama", vocab_size=VOCAB_SIZE)
    original.model.save_pretrained(tmp_path)
    word_tokenizer().save_pretrained(tmp_path)
    target = load_target(tmp_path)
    assert (target.family, target.is_vlm, target.processor) == ("causal_lm", False, None)
    prepared = target.prepare(prompt="what shape")
    words = target.tokenizer.convert_ids_to_tokens(prepared.input_ids[0].tolist())
    assert words == ["user", ":", "what", "shape", "assistant", ":"]
    assert not prepared.image_mask.any()
    with pytest.raises(TargetError, match="text-only"):
        target.prepare(prompt="what", images=[Image.new("RGB", (8, 8))])


def test_chat_turns_go_through_the_chat_template_with_their_images(llava_dir, tmp_path):
    path, _ = llava_dir
    target = load_target(path)
    turns = [{"role": "user", "content": "what is this"},
             {"role": "assistant", "content": "red circle"},
             {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "shape"}]}]
    prepared = target.prepare(messages=turns, images=[Image.new("RGB", (16, 16), "red")])
    words = target.tokenizer.convert_ids_to_tokens(prepared.input_ids[0].tolist())
    assert words[:8] == ["user", ":", "what", "is", "this", "assistant", ":", "red"]
    assert words[-2:] == ["assistant", ":"] and int(prepared.image_mask.sum()) == 16
    text = tiny_target("llama", vocab_size=VOCAB_SIZE)
    text.model.save_pretrained(tmp_path / "text")
    word_tokenizer().save_pretrained(tmp_path / "text")
    words = load_target(tmp_path / "text").prepare(messages=turns[:2] + [
        {"role": "user", "content": "shape"}]).input_ids[0].tolist()
    assert text.model.config.vocab_size == VOCAB_SIZE and len(words) == 14


def save_tiny_qwen2_vl(directory):
    """A tiny Qwen2-VL directory with processor files as the hub's hold them: an image processor
    config naming Qwen2VLProcessor, a tokenizer, a chat template; no video processor files."""
    tiny_target("qwen2_vl", vocab_size=VOCAB_SIZE).model.save_pretrained(directory)
    special = {"<|image_pad|>": VOCAB_SIZE - 1, "<|video_pad|>": VOCAB_SIZE - 2,
               "<|vision_start|>": VOCAB_SIZE - 3, "<|vision_end|>": VOCAB_SIZE - 4}
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, **special}
    vocab.update({word: 4 + index for index, word in enumerate(WORDS)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    template = CHAT_TEMPLATE.replace("<image> ", "<|vision_start|> <|image_pad|> <|vision_end|> ")
    PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", extra_special_tokens={"image_token": "<|image_pad|>",
                                                 "video_token": "<|video_pad|>"},
        chat_template=template).save_pretrained(directory)
    Qwen2VLImageProcessorPil(min_pixels=16 * 16, max_pixels=16 * 16, patch_size=4, merge_size=2,
                             temporal_patch_size=2).save_pretrained(directory)
    config = json.loads((directory / "preprocessor_config.json").read_text())
    config |= {"processor_class": "Qwen2VLProcessor", "image_processor_type": "Qwen2VLImageProcessor"}
    (directory / "preprocessor_config.json").write_text(json.dumps(config))
    return directory


def test_a_qwen2_vl_processor_loads_without_its_video_processor(tmp_path):
    """transformers' Qwen2-VL video processor needs torchvision; draftnas takes images only, so
    without torchvision the processor is built from the image processor and tokenizer alone."""
    target = load_target(save_tiny_qwen2_vl(tmp_path))
    assert target.processor is not None and target.family == "qwen2_vl"
    prepared = target.prepare(prompt="what shape", images=[Image.new("RGB", (16, 16), "red")])
    assert int(prepared.image_mask.sum()) == 4  # a 4x4 patch grid, merged 2x2
    out = target.forward(prepared.input_ids, cache=target.new_cache(),
                         model_kwargs=prepared.model_kwargs, logits="last")
    assert out.logits.shape == (1, 1, VOCAB_SIZE)


def test_a_processor_that_cannot_load_says_why(tmp_path, monkeypatch):
    save_tiny_qwen2_vl(tmp_path)
    missing = ImportError("\nQwen2VLVideoProcessor requires the Torchvision library but it was "
                          "not found in your environment. Check out the instructions")

    def fails(*args, **kwargs):
        raise missing

    monkeypatch.setattr(processors.AutoProcessor, "from_pretrained", fails)
    monkeypatch.setattr(processors.AutoImageProcessor, "from_pretrained", fails)
    with pytest.raises(TargetError) as error:
        load_target(tmp_path)
    message = str(error.value)
    assert "\n" not in message and "processor files cannot be loaded" in message
    assert "Qwen2VLVideoProcessor requires the Torchvision library" in message
    assert "install torchvision" in message


def test_fingerprint_follows_weights_not_dtype():
    first = tiny_target("llama", seed=0)
    assert len(first.fingerprint) == 64
    assert tiny_target("llama", seed=0).fingerprint == first.fingerprint
    assert tiny_target("llama", seed=1).fingerprint != first.fingerprint


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-such-target", "is unknown"),
        ("no-such-org/no-such-model", "not in the local Hugging Face cache"),
    ],
)
def test_bad_spec_is_one_line(spec, message):
    with pytest.raises(TargetError, match=message) as error:
        load_target(spec)
    assert "\n" not in str(error.value)


def test_directory_without_config_or_weights(tmp_path):
    with pytest.raises(TargetError, match="no config.json"):
        load_target(tmp_path)
    tiny_target("llama").model.config.save_pretrained(tmp_path)
    with pytest.raises(TargetError, match="no weights"):
        load_target(tmp_path)


def test_prompt_needs_a_tokenizer_and_must_fit_the_context():
    target = tiny_target("llama")
    with pytest.raises(TargetError, match="no tokenizer"):
        target.prepare(prompt="hello")
    too_long = torch.ones(1, target.max_positions + 1, dtype=torch.long)
    with pytest.raises(TargetError, match="exceed the target's context"):
        target.prepare(inputs={"input_ids": too_long})


def test_forward_rejects_bad_arguments():
    target = tiny_target("llama")
    prepared = tiny_inputs(target, n_text=4)
    cache = target.new_cache()
    with pytest.raises(TargetError, match="exactly one"):
        target.forward(cache=cache)
    with pytest.raises(TargetError, match="taps"):
        target.forward(prepared.input_ids, cache=cache, taps=(target.num_layers + 1,))
    with pytest.raises(TargetError, match="attention_mask has shape"):
        target.forward(prepared.input_ids, cache=cache, attention_mask=torch.zeros(1, 1, 2, 2))
    with pytest.raises(TargetError, match="attention_mask are set by the adapter"):
        target.forward(
            prepared.input_ids,
            cache=cache,
            model_kwargs={"attention_mask": torch.ones_like(prepared.input_ids)},
        )
    assert cache.length == 0
    with pytest.raises(TargetError, match="unknown"):
        tiny_target("gpt5")


def test_hub_id_loads_from_the_local_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    # The layout huggingface_hub writes: snapshots/<revision>/ and refs/main naming it.
    repo = tmp_path / "models--tiny-org--tiny-llama"
    snapshot = repo / "snapshots" / "0123abcd"
    original = tiny_target("llama")
    original.model.save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    target = load_target("tiny-org/tiny-llama")
    assert target.spec == "tiny-org/tiny-llama" and target.path == str(snapshot)
    assert target.fingerprint == original.fingerprint
