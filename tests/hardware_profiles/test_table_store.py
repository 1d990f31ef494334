"""Where tables live and which one a target and device get: the user's first, then a shipped one,
a quick (tagged) one only for its tag, never one of another target, device or an unfinished one."""

from dataclasses import replace

import pytest
from latency_fixtures import DEVICE, FINGERPRINT, synthetic_table

from hardware_profiles.table import TableError
from hardware_profiles.table_store import SHIPPED_DIR, TableStore, file_name, tag_of


@pytest.fixture
def store(tmp_path) -> TableStore:
    (tmp_path / "shipped").mkdir()
    return TableStore(tmp_path / "mine", tmp_path / "shipped")


def save(path, **changes):
    return replace(synthetic_table(), **changes).save(path)


def test_tables_are_named_by_device_target_and_fingerprint(store):
    path = store.path_for("shapes:smoke", FINGERPRINT, "cpu")
    assert path == store.directory / f"cpu-shapes_smoke-{FINGERPRINT[:8]}.json"
    quick = store.path_for("/models/my-llava", FINGERPRINT, "cuda", tag="smoke")
    assert quick.name == f"cuda-my-llava-{FINGERPRINT[:8]}-smoke.json"
    assert tag_of(quick, FINGERPRINT) == "smoke" and tag_of(path, FINGERPRINT) is None
    assert store.path_for("x", FINGERPRINT, "cpu", name="mine").name == "mine.json"
    assert file_name("Qwen/Qwen2-VL-2B") == "Qwen2-VL-2B"


def test_find_prefers_the_users_full_table_then_a_shipped_one_then_its_tag(store):
    assert store.find(FINGERPRINT, DEVICE) is None
    quick = save(store.path_for("t", FINGERPRINT, "cpu", tag="smoke"))
    assert store.find(FINGERPRINT, DEVICE) is None  # a quick table serves its own tag only
    assert store.find(FINGERPRINT, DEVICE, tag="long") is None
    assert store.find(FINGERPRINT, DEVICE, tag="smoke") == quick
    shipped = save(store.shipped / "cpu-t.json")
    assert store.find(FINGERPRINT, DEVICE, tag="smoke") == shipped
    mine = save(store.path_for("t", FINGERPRINT, "cpu"))
    assert store.find(FINGERPRINT, DEVICE) == mine


@pytest.mark.parametrize("changes", [
    {"complete": False},
    {"device": replace(DEVICE, name="another cpu")},
    {"device": replace(DEVICE, dtype="bfloat16")},
    {"target": {**synthetic_table().target, "fingerprint": "b" * 64}},
])
def test_find_takes_no_table_of_another_target_device_or_unfinished(store, changes):
    save(store.directory / "t.json", **changes)
    (store.directory / "broken.json").write_text("{")
    assert store.find(FINGERPRINT, DEVICE) is None


def test_other_threads_or_torch_still_match(store):
    path = save(store.directory / "t.json", device=replace(DEVICE, threads=8,
                                                           torch_version="2.0"))
    assert store.find(FINGERPRINT, DEVICE) == path


def test_a_name_is_looked_up_among_the_users_tables_then_the_shipped_ones(store, tmp_path):
    shipped = save(store.shipped / "cpu-t.json")
    assert store.named("cpu-t") == shipped
    mine = save(store.directory / "cpu-t.json")
    assert store.named("cpu-t") == mine
    assert store.named(str(tmp_path / "any.json")) == tmp_path / "any.json"
    with pytest.raises(TableError, match="hardware.table"):
        store.named("nowhere")


def test_the_shipped_tables_are_the_packages_own():
    assert SHIPPED_DIR.name == "tables" and (SHIPPED_DIR / "cpu-shapes.json").is_file()
