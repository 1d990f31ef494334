"""`DecodeShape`: the one type of a decoding shape (labels, config.json's dicts, one validator),
held by DecodeConfig and DraftConfig, importable without torch."""

import json
import subprocess
import sys

import pytest

from specdec import DecodeConfig, DraftError
from specdec.shape import DEFAULT_SHAPE, DecodeShape


@pytest.mark.parametrize(("label", "shape"), [
    ("chain 3", DecodeShape(3, 1, 4)), ("tree 6/4/32", DecodeShape(6, 4, 32)),
    ("tree 3/2/6", DecodeShape(3, 2, 6)),
])
def test_shape_labels_and_dicts_round_trip(label, shape):
    assert DecodeShape.parse(label) == shape and shape.label == label
    assert DecodeShape.from_dict(json.loads(json.dumps(shape.to_dict()))) == shape


@pytest.mark.parametrize(("label", "message"), [
    ("tree 6/4", "not a decoding shape"), ("chain 0", "k = 0: use a positive integer"),
    ("tree 6/4/6", r"between depth \+ 1 = 7"), ("tree 2/2/8", r"and 7 \(every candidate"),
])
def test_bad_shapes_name_the_fix(label, message):
    with pytest.raises(DraftError, match=message):
        DecodeShape.parse(label)


def test_the_decoder_holds_a_shape_and_defaults_to_the_tree():
    assert DecodeConfig().shape == DEFAULT_SHAPE == DecodeShape(6, 4, 32)
    assert DecodeConfig(DecodeShape.chain(2)).shape.is_chain
    with pytest.raises(DraftError, match="DecodeShape"):
        DecodeConfig({"mode": "chain", "k": 2})


def test_a_shape_imports_without_torch():
    """A search space file lists shapes: search_spaces reads them without loading torch."""
    code = ("import sys, search_spaces, specdec.shape; "
            "print('torch' in sys.modules, search_spaces.load_space('dream_s').decode[0].label)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "chain", "1"]
