"""The embedded `shapes` target: grounded descriptions, tokenizer, and the quick build (atomic, cached)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import easy_vqa
import pytest
import torch
from PIL import Image, ImageDraw
from transformers import AutoProcessor, LlavaForConditionalGeneration

from targets.embedded import shapes
from targets.embedded.shapes import data
from targets.embedded.shapes.architecture import image_token_count
from targets.embedded.shapes.describe import describe
from targets.embedded.shapes.pixels import measure
from targets.embedded.shapes.recipe import RECIPES, recipe_for
from targets.embedded.shapes.tokenizer import build_tokenizer
from targets.errors import TargetError

MINT = (232, 250, 240)


def drawn(shape: str, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", (64, 64), MINT)
    draw = ImageDraw.Draw(image)
    if shape == "rectangle":
        draw.rectangle(box, fill=colour)
    elif shape == "circle":
        draw.ellipse(box, fill=colour)
    else:
        x0, y0, x1, y1 = box
        draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=colour)
    return image


def test_facts_match_the_pixels_of_drawn_images():
    small_red_top_left = measure(drawn("rectangle", (2, 2, 11, 11), (255, 0, 0)))
    assert (small_red_top_left.shape, small_red_top_left.colour) == ("rectangle", "red")
    assert small_red_top_left.position == "upper left corner"
    assert small_red_top_left.size == "small"
    assert small_red_top_left.background == "mint"
    large_teal_bottom_right = measure(drawn("circle", (30, 30, 63, 63), (0, 128, 128)))
    assert large_teal_bottom_right.shape == "circle"
    assert large_teal_bottom_right.colour == "teal"
    assert large_teal_bottom_right.position == "lower right corner"
    assert large_teal_bottom_right.size == "large"
    assert set(large_teal_bottom_right.touched_edges) == {"right", "bottom"}
    wide_triangle = measure(drawn("triangle", (10, 40, 60, 50), (0, 0, 255)))
    assert (wide_triangle.shape, wide_triangle.aspect) == ("triangle", "wider than it is tall")


def test_descriptions_of_real_images_agree_with_easy_vqa_labels():
    texts, answers, image_ids = easy_vqa.get_test_questions()
    labelled = {}
    for question, answer, image_id in zip(texts, answers, image_ids):
        if question in ("what color is the shape?", "what shape is in the image?"):
            labelled.setdefault(image_id, {})[question.split()[1]] = answer
    images = data.load_images("test", 40)
    checked = 0
    for record in data.description_records("test", images):
        label = labelled.get(record.image_id, {})
        words = set(re.findall(r"[a-z]+", record.answer.lower()))
        if "color" in label:
            assert label["color"] in words, record.answer
            checked += 1
        if "shape" in label:
            assert label["shape"] in words, record.answer
            checked += 1
        sentences = [s.strip() for s in record.answer.split(".") if s.strip()]
        assert len(sentences) == 5 and len(set(sentences)) == 5, record.answer
    assert checked >= 10


def test_description_wording_varies_and_is_deterministic_per_seed():
    images = data.load_images("train", 30)
    first = [record.answer for record in data.description_records("train", images)]
    again = [record.answer for record in data.description_records("train", images)]
    assert first == again
    facts = measure(images[0])
    assert len({describe(facts, seed=f"seed-{n}") for n in range(10)}) >= 5
    openings = {re.sub(r"\b(red|green|blue|yellow|teal|brown|black|gray|circle|rectangle|triangle)\b",
                       "X", text.split(".")[0]) for text in first}
    assert len(openings) >= 3


def test_tokenizer_round_trips_without_unknown_words(tmp_path: Path):
    images = data.load_images("train", 50)
    records = data.description_records("train", images) + data.qa_records("train", images)
    tokenizer = build_tokenizer([r.question for r in records] + [r.answer for r in records])
    tokenizer.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(tmp_path, trust_remote_code=False)
    for text in [r.answer for r in records[:60]] + [r.question for r in records[-20:]]:
        ids = reloaded(text, add_special_tokens=False).input_ids
        assert reloaded.unk_token_id not in ids
        assert reloaded.decode(ids) == text


def test_unknown_budget_is_a_one_line_target_error():
    with pytest.raises(TargetError, match="budget='huge'.*use one of"):
        recipe_for("huge")


def test_recipe_hash_changes_with_the_recipe():
    assert RECIPES["full"].hash() != RECIPES["test"].hash()
    assert len({recipe.hash() for recipe in RECIPES.values()}) == len(RECIPES)


@pytest.fixture(scope="session")
def quick_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DRAFTNAS_HOME holding the quick build, started over a half-written leftover of a killed build."""
    home = tmp_path_factory.mktemp("draftnas_home")
    stale = home / "targets" / f"{shapes.TEMP_PREFIX}killed-build"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half written")
    shapes.ensure_built(home, budget="test")
    return home


def test_quick_build_cleans_leftovers_and_is_one_final_directory(quick_home: Path):
    entries = sorted(path.name for path in (quick_home / "targets").iterdir())
    assert entries == [f"shapes-{RECIPES['test'].hash()}"]


def test_quick_build_loads_and_generates_with_transformers(quick_home: Path):
    model_dir = shapes.ensure_built(quick_home, budget="test")
    model = LlavaForConditionalGeneration.from_pretrained(model_dir, trust_remote_code=False).eval()
    processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=False)
    image = data.load_images("test", 1)[0]
    messages = [{"role": "user", "content": [
        {"type": "image", "image": image}, {"type": "text", "text": data.DESCRIBE_PROMPT}]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                           return_dict=True, return_tensors="pt")
    image_token_id = model.config.image_token_id
    expected_image_tokens = image_token_count(RECIPES["test"])
    assert int((inputs["input_ids"] == image_token_id).sum()) == expected_image_tokens
    with torch.inference_mode():
        output = model.generate(**inputs, do_sample=False, max_new_tokens=6)
    assert output.shape[1] > inputs["input_ids"].shape[1]


def test_second_call_is_a_cache_hit(quick_home: Path, monkeypatch: pytest.MonkeyPatch):
    def no_training(budget: str, out_dir: Path) -> None:
        raise AssertionError("a cached target was rebuilt")

    monkeypatch.setattr(shapes, "_train_in_child", no_training)
    monkeypatch.setenv(shapes.BUDGET_ENV, "test")
    assert shapes.ensure_built(quick_home) == quick_home / "targets" / f"shapes-{RECIPES['test'].hash()}"


def test_interrupted_build_leaves_no_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def interrupted(budget: str, out_dir: Path) -> None:
        (out_dir / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(shapes, "_train_in_child", interrupted)
    with pytest.raises(KeyboardInterrupt):
        shapes.ensure_built(tmp_path, budget="test")
    assert list((tmp_path / "targets").iterdir()) == []


def test_two_first_builds_at_once_both_succeed(tmp_path: Path):
    """Two processes building into one empty home: one builds, the other waits for it and uses its
    build (before, each removed the other's build directory, and the loser crashed)."""
    build = ("import sys; from pathlib import Path; from targets.embedded import shapes\n"
             "print(shapes.ensure_built(Path(sys.argv[1]), budget='test'))\n")
    builders = [subprocess.Popen([sys.executable, "-c", build, str(tmp_path)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    outputs = [builder.communicate(timeout=600) for builder in builders]
    for builder, (_, err) in zip(builders, outputs, strict=True):
        assert builder.returncode == 0, err
    final = tmp_path / "targets" / f"shapes-{RECIPES['test'].hash()}"
    assert [out.strip().splitlines()[-1] for out, _ in outputs] == [str(final)] * 2
    assert [path.name for path in (tmp_path / "targets").iterdir()] == [final.name]
    assert any("waiting for another process" in err for _, err in outputs)


def test_a_killed_builds_leftover_is_removed_and_a_live_ones_kept(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    parent = tmp_path / "targets"
    killed = parent / f"{shapes.TEMP_PREFIX}{dead}-1"
    live = parent / f"{shapes.TEMP_PREFIX}{os.getppid()}-1"
    for leftover in (killed, live):
        leftover.mkdir(parents=True)
    monkeypatch.setattr(shapes, "_train_in_child",
                        lambda budget, out_dir: (out_dir / "config.json").write_text("{}"))
    shapes.ensure_built(tmp_path, budget="test")
    assert not killed.exists() and live.is_dir()
