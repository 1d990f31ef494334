"""Bad data exits 2 with one line naming the file, the row and the field, before any cache is
written; `data.on_error=skip` leaves the bad rows out, counts them and lists them in the result."""

import json
from pathlib import Path

import pytest
from tiny_llava_dir import save_tiny_llava

from nas.cli import main


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def good_rows(count: int = 12) -> list[dict]:
    return [{"prompt": f"what colour is it {i}"} for i in range(count)]


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory) -> Path:
    return save_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


def bench(llava_dir: Path, data: Path, run_dir: Path, *extra: str) -> int:
    return main(["bench", f"target={llava_dir}", f"data={data}", "n_prompts=1",
                 "max_new_tokens=4", "baselines=[]", "warmup=false", "repeats=1", "threads=1",
                 f"run_dir={run_dir}", *extra])


def broken_image(directory: Path) -> str:
    (directory / "broken.png").write_text("not an image")
    return "broken.png"


# Each case: the file's rows (or content), and what the one line must name.
CASES = {
    "missing column": (lambda d: [*good_rows(), {"question": "what colour"}],
                       ["row 12", "field 'prompt'", "missing", "data.prompt_column="]),
    "empty prompt": (lambda d: [*good_rows()[:3], {"prompt": "  "}, *good_rows()[3:]],
                     ["row 3", "field 'prompt'", "empty"]),
    "missing image": (lambda d: [*good_rows()[:5], {"prompt": "x", "image": "gone.png"},
                                 *good_rows()[5:]],
                      ["row 5", "field 'image'", "gone.png", "does not exist"]),
    "unreadable image": (lambda d: [{"prompt": f"x {i}", "image": broken_image(d)}
                                    for i in range(12)],
                         ["row ", "field 'image'", "broken.png", "cannot be read"]),
    "prompt longer than the context": (lambda d: [{"prompt": "what " * 300 + str(i)}
                                                  for i in range(12)],
                                       ["row ", "field 'prompt'", "exceed", "context of 256"]),
}


@pytest.mark.parametrize("case", CASES)
def test_each_bad_row_exits_2_naming_file_row_and_field(case, llava_dir, tmp_path, capsys,
                                                        monkeypatch):
    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    make, words = CASES[case]
    data = jsonl(tmp_path / "data.jsonl", make(tmp_path))
    assert bench(llava_dir, data, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("draftnas bench: error: "), err
    for word in [str(data), *words, "data.on_error=skip"]:
        assert word in err, (word, err)
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*.pt"))


@pytest.mark.parametrize("name, content, kind", [
    ("data.parquet", '{"prompt": "a"}\n', "Parquet"),
    ("data.jsonl", '[{"prompt": "a"},\n {"prompt": "b"}]\n', "JSON"),
    ("data.csv", None, "CSV"),
])
def test_a_file_that_is_not_what_its_extension_says_exits_2(name, content, kind, llava_dir,
                                                             tmp_path, capsys):
    path = tmp_path / name
    if content is None:
        path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01" * 20)
    else:
        path.write_text(content)
    assert bench(llava_dir, path, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and kind in err, err


def test_skip_leaves_bad_rows_out_and_reports_them(llava_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    rows = [*good_rows(20), {"prompt": ""}, {"prompt": "x", "image": "gone.png"}]
    data = jsonl(tmp_path / "data.jsonl", rows)
    assert bench(llava_dir, data, tmp_path / "run", "data.on_error=skip") == 0
    out = capsys.readouterr().out
    assert "left out 2 bad row(s)" in out
    report = json.loads((tmp_path / "run" / "result.json").read_text())["result"]["data"]
    assert report["skipped_rows"] == 2
    assert [(row["row"], row["field"]) for row in report["skipped"]] == [(20, "prompt"),
                                                                         (21, "image")]
    assert not {20, 21} & set(report["splits"]["test"]["rows"])


def test_a_target_of_your_own_needs_data(llava_dir, tmp_path, capsys):
    assert main(["train", f"target={llava_dir}", f"run_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no prompt set of its own" in err and "data=" in err
