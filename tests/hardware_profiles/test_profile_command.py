"""`draftnas profile` on a tiny local-directory target: exit 0 and a table; bad tables exit 2."""

import json
from pathlib import Path

import pytest

from hardware_profiles.table import load_table
from hardware_profiles.table_store import SHIPPED_DIR
from nas.cli import main
from targets.tiny import tiny_target

FAST = ["hardware.contexts=[16,40]", "hardware.warmup=0", "hardware.repeats=1",
        "hardware.threads=1"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-llama")
    tiny_target("llama").model.save_pretrained(directory)
    return directory


def profile_cli(capsys, tiny_dir, space_file, tmp_path, *extra: str) -> tuple[int, str, str]:
    code = main(["profile", f"target={tiny_dir}", f"search_space={space_file}",
                 "hardware.name=tiny", f"run_dir={tmp_path / 'run'}", *FAST, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_profile_writes_the_table_and_validates(capsys, tiny_dir, small_space_file, tmp_path):
    table_path = tmp_path / "tables" / "tiny.json"
    code, out, _ = profile_cli(capsys, tiny_dir, small_space_file, tmp_path,
                               f"output={table_path}", "validate=true", "validate_subnets=2",
                               "validate_tokens=2")
    assert code == 0
    result_path = out.strip().splitlines()[-1]
    result = json.loads(Path(result_path).read_text())["result"]
    assert result["table"] == str(table_path) and result["measured"] == result["entries"] > 0
    table = load_table(table_path)
    assert table.complete and table.target["spec"] == str(tiny_dir)
    assert len(result["validation"]["subnets"]) == 2
    assert (tmp_path / "run" / "latency_validation.png").is_file()
    # The verification curve from one new token up, and plain decoding against memory's limit.
    curve = result["verification_curve"]
    assert all(row["1"] == 1.0 and set(row) >= {"2", "4", "8", "16"} for row in curve.values())
    assert result["memory"]["limit_tokens_per_s"] > 0 and result["plain_tokens_per_s"] > 0
    assert "verification T(q)/T(1) at context" in out and "memory-bound limit" in out
    assert Path(result["plot"]).is_file() and table.device.runtime == "fp16"  # auto, on a CPU
    code, out, _ = profile_cli(capsys, tiny_dir, small_space_file, tmp_path,
                               f"output={table_path}")
    assert code == 0 and "0 measured now" in out


def assert_one_line_exit_2(code: int, err: str, *words: str) -> None:
    assert code == 2 and err.count("\n") == 1 and err.startswith("draftnas profile: error: ")
    for word in words:
        assert word in err, err


def test_malformed_table_exits_2_with_one_line(capsys, tiny_dir, small_space_file, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "draftnas-latency-table", "version": 0}))
    code, _, err = profile_cli(capsys, tiny_dir, small_space_file, tmp_path, f"output={bad}")
    assert_one_line_exit_2(code, err, str(bad), "version 0")


def test_table_of_another_target_exits_2(capsys, tiny_dir, small_space_file, tmp_path,
                                         tmp_path_factory):
    other_dir = tmp_path_factory.mktemp("other-llama")
    tiny_target("llama", seed=1).model.save_pretrained(other_dir)
    table_path = tmp_path / "t.json"
    assert profile_cli(capsys, other_dir, small_space_file, tmp_path,
                       f"output={table_path}")[0] == 0
    code, _, err = profile_cli(capsys, tiny_dir, small_space_file, tmp_path,
                               f"output={table_path}")
    assert_one_line_exit_2(code, err, "measured for target", "profile this target")


def test_bad_settings_exit_2(capsys, tiny_dir, small_space_file, tmp_path):
    code, _, err = profile_cli(capsys, tiny_dir, small_space_file, tmp_path, "hardware.repeats=0")
    assert_one_line_exit_2(code, err, "hardware.repeats")


def test_a_table_goes_among_the_users_tables_never_into_the_package(capsys, tiny_dir,
                                                                    small_space_file, tmp_path,
                                                                    monkeypatch):
    """Without output= or hardware.name the table is named by target and device under
    $DRAFTNAS_HOME/tables; reuse=true then finds it there and times nothing."""
    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    shipped = sorted(SHIPPED_DIR.iterdir())
    args = ["profile", f"target={tiny_dir}", f"search_space={small_space_file}", *FAST]
    assert main([*args, f"run_dir={tmp_path / 'first'}"]) == 0
    first = json.loads((tmp_path / "first" / "result.json").read_text())["result"]
    table = Path(first["table"])
    assert table.parent == tmp_path / "home" / "tables" and table.name.startswith("cpu-")
    assert first["profiled"] and sorted(SHIPPED_DIR.iterdir()) == shipped
    assert main([*args, "reuse=true", f"run_dir={tmp_path / 'again'}"]) == 0
    again = json.loads((tmp_path / "again" / "result.json").read_text())["result"]
    assert (again["table"], again["profiled"]) == (str(table), False)
    assert "matches this target and device, not profiling" in capsys.readouterr().out
