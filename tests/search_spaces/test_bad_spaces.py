"""A bad space file fails on load with one line that names the file, the key and the fix."""

from pathlib import Path

import pytest
import yaml

from search_spaces import SpaceError, TargetDims, load_space

GOOD = {
    "num_layers": [1, 2],
    "num_heads": [0.5, 1.0],
    "intermediate_size": [2.0],
    "interaction": ["concat"],
    "injected_layers": [["top"], [2, "eagle3"]],
    "vision_keep_ratio": [1.0],
    "draft_vocab_size": ["full"],
}


def write_space(tmp_path: Path, **changes) -> Path:
    dimensions = {**GOOD, **changes}
    dimensions = {key: value for key, value in dimensions.items() if value is not None}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"dimensions": dimensions}))
    return path


def test_a_good_file_loads_by_path(tmp_path):
    space = load_space(write_space(tmp_path))
    assert space.name == "mine"
    assert space.injected_layers == (("top",), (2, "eagle3"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"depth": [1]}, "dimension 'depth' is unknown"),
        ({"interaction": ["concat", "gated"]}, r"interaction\[1\]='gated' is not an interaction"),
        ({"num_layers": []}, "dimension 'num_layers' needs a non-empty list"),
        ({"vision_keep_ratio": None}, "dimension 'vision_keep_ratio' needs a non-empty list"),
        ({"vision_keep_ratio": [0.5, 1.5]}, r"vision_keep_ratio\[1\]=1.5 is not a ratio"),
        ({"num_heads": [0]}, r"num_heads\[0\]=0 is not a ratio"),
        ({"num_layers": [1.5]}, r"num_layers\[0\]=1.5 is invalid; use a positive integer"),
        ({"intermediate_size": [-1.0]}, r"intermediate_size\[0\]=-1.0 is invalid"),
        ({"draft_vocab_size": [1.0]}, r"draft_vocab_size\[0\]=1.0 is invalid; use 'full'"),
        ({"injected_layers": [[]]}, r"injected_layers\[0\]=\[\] must be a non-empty list"),
        ({"injected_layers": [["bottom"]]}, r"injected_layers\[0\]\[0\]='bottom' is not a tap"),
        ({"injected_layers": [["entropy:0"]]}, r"'entropy:0' is not a tap"),
        ({"injected_layers": [[0]]}, r"injected_layers\[0\]\[0\]=0 is not a decoder-layer tap"),
        ({"decode": ["chain 2", "tree 3"]}, r"decode\[1\]='tree 3' is not a decoding shape"),
        ({"decode": []}, "dimension 'decode' needs a non-empty list"),
    ],
)
def test_bad_dimension_names_the_key(tmp_path, changes, message):
    path = write_space(tmp_path, **changes)
    with pytest.raises(SpaceError, match=message) as error:
        load_space(path)
    assert str(error.value).startswith(f"{path}: ")
    assert "\n" not in str(error.value)


def test_unknown_top_level_key(tmp_path):
    path = tmp_path / "odd.yaml"
    path.write_text(yaml.safe_dump({"dimensions": GOOD, "searcher": "tpe"}))
    with pytest.raises(SpaceError, match="space key 'searcher' is unknown"):
        load_space(path)


def test_unknown_name_lists_the_named_spaces():
    with pytest.raises(SpaceError, match=r"'dreams'.*dream, dream_s, dream_s_cpu, eagle"):
        load_space("dreams")


def test_invalid_yaml_syntax(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("dimensions:\n  num_layers: [1, 2\n")
    with pytest.raises(SpaceError, match="is not valid YAML"):
        load_space(path)


def test_tap_beyond_the_target_is_refused_on_resolve(tmp_path):
    space = load_space(write_space(tmp_path, injected_layers=[[40]]))
    with pytest.raises(SpaceError, match="tap 40 is outside the target's taps 1..30"):
        space.resolve(TargetDims(hidden_size=576, num_layers=30, num_heads=9, vocab_size=49152))
