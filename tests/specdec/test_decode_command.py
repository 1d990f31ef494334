"""`draftnas decode`: a draft checkpoint (or none) on a local target, text or JSON, bad input.

Run through `nas.cli.run_command` (compose conf/decode.yaml, run, write result.json), the path
`draftnas decode ...` takes once the command is listed in nas.commands.COMMANDS.
"""

import json
from pathlib import Path

import pytest
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import CLIPImageProcessorPil, LlavaProcessor, PreTrainedTokenizerFast

from nas.cli import run_command
from specdec import DraftConfig, DraftError, DraftModel
from targets import load_target
from targets.tiny import tiny_target


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory) -> Path:
    """A tiny random LLaVA with a word-level offline processor and chat template."""
    image_token, words = "<image>", ["user", "assistant", ":", "what", "colour", "is", "it"]
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, image_token: 127}
    vocab |= {word: 4 + index for index, word in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    template = (
        "{% for m in messages %}{{ m['role'] }} : {% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}"
        "{% endfor %}{% if add_generation_prompt %}assistant : {% endif %}"
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", extra_special_tokens={"image_token": image_token},
        chat_template=template)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 16},
                                              crop_size={"height": 16, "width": 16}),
        tokenizer=tokenizer, patch_size=4, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, image_token=image_token, chat_template=template)
    directory = tmp_path_factory.mktemp("tiny-llava")
    tiny_target("llava_clip", vocab_size=128).model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def image_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("image") / "red.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(path)
    return path


@pytest.fixture(scope="module")
def draft_dir(llava_dir, tmp_path_factory) -> Path:
    target = load_target(str(llava_dir))
    cfg = DraftConfig.for_target(target, interaction="cross_attention", vision_keep_ratio=0.5)
    return DraftModel.random(cfg, target).save_pretrained(tmp_path_factory.mktemp("draft"))


def decode(capsys, tmp_path: Path, *overrides: str) -> tuple[dict, str]:
    assert run_command("decode", [f"run_dir={tmp_path}", *overrides], wants_help=False) == 0
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1] == str(tmp_path / "result.json")
    return json.loads((tmp_path / "result.json").read_text())["result"], out


def test_a_draft_decodes_what_the_plain_target_decodes(capsys, tmp_path, llava_dir, image_file,
                                                       draft_dir):
    common = [f"target={llava_dir}", f"image={image_file}", "prompt='what colour is it'",
              "max_new_tokens=8"]
    vanilla, _ = decode(capsys, tmp_path / "vanilla", *common, "draft=none")
    drafted, out = decode(capsys, tmp_path / "tree", *common, f"draft={draft_dir}", "mode=tree",
                          "depth=3", "top_k=2", "total_tokens=6")
    assert drafted["token_ids"] == vanilla["token_ids"] and len(vanilla["token_ids"]) >= 1
    assert vanilla["stats"]["tau"] in (None, 1.0)
    assert "tau (tokens per target forward, bonus token included)" in out
    as_json, out = decode(capsys, tmp_path / "json", *common, f"draft={draft_dir}",
                          "mode=chain", "k=2", "format=json")
    assert json.loads(out.splitlines()[0])["token_ids"] == vanilla["token_ids"]
    assert as_json["token_ids"] == vanilla["token_ids"]


def test_a_draft_for_another_target_is_one_line_draft_error(tmp_path, llava_dir, draft_dir):
    other = tmp_path / "other-llava"
    tiny_target("llava_clip", seed=5).model.save_pretrained(other)
    for name in ("preprocessor_config.json", "processor_config.json", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (llava_dir / name).exists():
            (other / name).write_bytes((llava_dir / name).read_bytes())
    with pytest.raises(DraftError, match="fingerprint") as error:
        run_command("decode", [f"run_dir={tmp_path / 'run'}", f"target={other}",
                               f"draft={draft_dir}", "prompt=what"], wants_help=False)
    assert "\n" not in str(error.value)


def test_total_tokens_below_depth_is_one_line_draft_error(tmp_path, llava_dir):
    with pytest.raises(DraftError, match="total_tokens") as error:
        run_command("decode", [f"run_dir={tmp_path}", f"target={llava_dir}", "prompt=what",
                               "depth=6", "total_tokens=4"], wants_help=False)
    assert "\n" not in str(error.value)
