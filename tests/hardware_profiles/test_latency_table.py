"""The table file: round trip, version, and a one-line TableError for every kind of bad table."""

import json
import warnings

import pytest
from latency_fixtures import DEVICE, FINGERPRINT, synthetic_table

from hardware_profiles.device import DeviceFingerprint
from hardware_profiles.table import DeviceMismatchWarning, TableError, load_table


@pytest.fixture
def table_file(tmp_path):
    return synthetic_table().save(tmp_path / "table.json")


def edited(path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_round_trip_keeps_every_field(table_file):
    table = synthetic_table()
    loaded = load_table(table_file, FINGERPRINT, DEVICE)
    assert loaded.to_dict() == json.loads(json.dumps(table.to_dict()))
    assert loaded.entries.keys() == table.entries.keys()
    assert loaded.grid == table.grid and loaded.space == table.space
    assert loaded.device == DEVICE and loaded.complete


def test_save_is_atomic_and_leaves_no_partial_file(tmp_path):
    synthetic_table().save(tmp_path / "t.json")
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


def one_line_error(path, *words, **kwargs) -> str:
    with pytest.raises(TableError) as caught:
        load_table(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("version", [1, 2, 3, 99])
def test_other_version_is_refused_with_the_remake_command(table_file, version):
    # Version 1 tables timed one decoding shape, version 2 T_target(1) as a sum of parts: they
    # must be remade, not read.
    edited(table_file, lambda d: d.update(version=version))
    one_line_error(table_file, f"version {version}", "reads version 4", "fresh=true")


@pytest.mark.parametrize(("edit", "words"), [
    (lambda d: d.update(format="something"), ["not a latency table"]),
    (lambda d: d.pop("grid"), ["missing key 'grid'"]),
    (lambda d: d.update(extra=1), ["unknown key 'extra'"]),
    (lambda d: d.update(device={"kind": "cpu"}), ["device must be an object"]),
    (lambda d: d.update(memory=3), ["memory must be an object with keys"]),
    (lambda d: d["memory"].pop("read_gbs"), ["memory must be an object with keys"]),
    (lambda d: d["target"].pop("fingerprint"), ["target must have exactly the keys"]),
    (lambda d: d["grid"].update(contexts=[64, -1]), ["grid values"]),
    (lambda d: d["entries"].update({"layer/q=1": {"ms": 1, "spread": 0, "repeats": 1}}),
     ["entry 'layer/q=1'", "needs fields"]),
    # a layer keyed the old way (cross=0/1, before concat's first layer had a kind of its own)
    (lambda d: d["entries"].update({"layer/cross=1/heads=4/head_dim=16/ffn=64/q=1/ctx=32": {
        "ms": 1, "spread": 0, "repeats": 1}}), ["entry 'layer/cross=1/", "needs fields kind/"]),
    (lambda d: d["entries"].update({"warp/q=1": {"ms": 1, "spread": 0, "repeats": 1}}),
     ["entry 'warp/q=1'", "unknown part"]),
    (lambda d: d["entries"].update({"head/vocab=0/q=x": {"ms": 1, "spread": 0, "repeats": 1}}),
     ["'head/vocab=0/q=x'", "not a non-negative integer"]),
    (lambda d: d["entries"].update({"head/vocab=0/q=1": {"ms": -1, "spread": 0, "repeats": 1}}),
     ["'head/vocab=0/q=1'", "ms=-1"]),
    (lambda d: d["entries"].update({"head/vocab=0/q=1": {"ms": 1.0}}),
     ["'head/vocab=0/q=1'", "must be"]),
    (lambda d: d["entries"].update({"head/vocab=0/q=1": {"ms": 1, "spread": 0, "repeats": 0}}),
     ["'head/vocab=0/q=1'", "repeats=0"]),
])
def test_malformed_tables_name_the_bad_entry(table_file, edit, words):
    edited(table_file, edit)
    one_line_error(table_file, *words)


def test_not_json_and_missing_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{\"format\": ")
    one_line_error(broken, "not JSON")
    one_line_error(tmp_path / "absent.json", "no such latency table")


def test_nan_latency_is_refused(table_file):
    def nan(data):
        data["entries"]["head/vocab=0/q=1"]["ms"] = float("nan")

    edited(table_file, nan)
    one_line_error(table_file, "'head/vocab=0/q=1'", "finite")


def test_table_of_another_target_is_refused(table_file):
    one_line_error(table_file, "measured for target 'synthetic'", "profile this target",
                   target_fingerprint="b" * 64)


def test_other_device_loads_with_a_warning(table_file):
    other = DeviceFingerprint("cpu", "another cpu", 8, "2.13.0", "float32")
    with pytest.warns(DeviceMismatchWarning, match="another cpu"):
        load_table(table_file, device=other)
    fp16 = DeviceFingerprint(*list(DEVICE.to_dict().values())[:-1], runtime="fp16")
    with pytest.warns(DeviceMismatchWarning, match="runtime: 'none' vs 'fp16'"):
        load_table(table_file, device=fp16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_table(table_file, device=DEVICE)


def test_the_verification_curve_and_the_memory_limit_come_from_the_table(table_file):
    table = load_table(table_file)
    curve = table.verification_curve()
    assert sorted(curve) == [32, 64, 128] and sorted(curve[64]) == [1, 2, 3]
    # synthetic_ms: target forward 1.0 + 0.05 q + 0.002 ctx (tree 0)
    assert curve[64][1] == 1.0
    assert curve[64][3] == pytest.approx((1.0 + 0.15 + 0.128) / (1.0 + 0.05 + 0.128))
    assert table.memory.limit_tokens_per_s == pytest.approx(8e9 / 4e6)
