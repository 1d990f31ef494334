"""The user's data as records and splits: every file format and a `save_to_disk` dataset read the
same rows; columns are mappable; chat turns keep their earlier turns; the splits are disjoint by
record digest, the same for the same data and seed, and a data set's own splits are used."""

import json
from pathlib import Path

import datasets
import pandas as pd
import pytest
from PIL import Image

from userdata import DataConfig, DataError, UserData
from userdata.embedded import prompt_pairs
from userdata.records import Columns, RowProblem, record_of

TOPICS = ("rice", "pasta", "rome", "paris", "chess", "tennis")


def rows(count: int = 30) -> list[dict]:
    return [{"prompt": f"question {i} about {TOPICS[i % len(TOPICS)]}?",
             "response": f"answer {i}."} for i in range(count)]


def with_images(directory: Path, count: int = 30) -> list[dict]:
    (directory / "images").mkdir(parents=True, exist_ok=True)
    written = []
    for i, row in enumerate(rows(count)):
        Image.new("RGB", (8, 8), (i * 8, 0, 255 - i * 8)).save(directory / "images" / f"{i}.png")
        written.append({**row, "image": f"images/{i}.png"})
    return written


def write(path: Path, data: list[dict]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in data))
    elif path.suffix == ".json":
        path.write_text(json.dumps(data))
    elif path.suffix == ".csv":
        pd.DataFrame(data).to_csv(path, index=False)
    else:
        pd.DataFrame(data).to_parquet(path)
    return path


def splits_of(data: UserData) -> dict[str, list[tuple[str | None, int]]]:
    return {split: [(record.source_split, record.row) for record in records]
            for split, records in data.splits.records.items()}


def digests_of(data: UserData) -> dict[str, set[str]]:
    return {split: {record.digest for record in records}
            for split, records in data.splits.records.items()}


def test_every_format_reads_the_same_records_and_splits(tmp_path):
    data = with_images(tmp_path)
    reads = [UserData(DataConfig(source=str(write(tmp_path / f"rows{suffix}", data))), "mine")
             for suffix in (".jsonl", ".json", ".csv", ".parquet")]
    saved = tmp_path / "saved"
    datasets.Dataset.from_list([{**row, "image": Image.open(tmp_path / row["image"])}
                                for row in data]).save_to_disk(str(saved))
    reads.append(UserData(DataConfig(source=str(saved)), "mine"))
    first = reads[0]
    assert {split: len(records) for split, records in first.splits.records.items()} == \
        {"train": 24, "validation": 3, "test": 3}
    for read in reads[1:]:
        assert splits_of(read) == splits_of(first)
        for split, records in read.splits.records.items():
            assert [r.messages for r in records] == [r.messages for r in first.splits.records[split]]
            assert all(len(r.images) == 1 for r in records)


def test_splits_are_disjoint_deterministic_and_follow_the_seed(tmp_path):
    path = write(tmp_path / "rows.jsonl", rows(40) + rows(40)[:5])  # five duplicates
    data = UserData(DataConfig(source=str(path)), "mine")
    digests = digests_of(data)
    assert not digests["train"] & digests["validation"]
    assert not digests["test"] & (digests["train"] | digests["validation"])
    assert data.splits.duplicates_dropped == 5
    assert splits_of(UserData(DataConfig(source=str(path)), "mine")) == splits_of(data)
    reseeded = UserData(DataConfig(source=str(path), seed=1), "mine")
    assert splits_of(reseeded)["test"] != splits_of(data)["test"]


def test_a_datasets_own_splits_are_used_and_overlaps_leave_the_held_out_split(tmp_path):
    train, test = rows(20), rows(26)[20:] + rows(2)  # two test rows are training rows too
    saved = tmp_path / "dict"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(train),
                          "test": datasets.Dataset.from_list(test)}).save_to_disk(str(saved))
    data = UserData(DataConfig(source=str(saved), validation=0.2), "mine")
    got = splits_of(data)
    assert {split for split, _ in got["test"]} == {"test"} and len(got["test"]) == 6
    assert data.splits.overlaps_dropped == 2
    assert {split for split, _ in got["validation"]} == {"train"} and len(got["validation"]) == 4
    # The named train split keeps its order, less the rows drawn for validation.
    assert [row for _, row in got["train"]] == sorted(row for _, row in got["train"])
    only_test = UserData(DataConfig(source=str(saved), split="test"), "mine")
    assert {split for records in splits_of(only_test).values() for split, _ in records} == \
        {"test"}
    with pytest.raises(DataError, match="data.split: .* has no split 'dev'"):
        UserData(DataConfig(source=str(saved), split="dev"), "mine")


def test_columns_are_mappable_and_chat_turns_keep_the_earlier_turns(tmp_path):
    row = {"q": "how do i cook rice", "pic": ["a.png", "b.png"],
           "chat": [{"role": "system", "content": "be brief"},
                    {"role": "user", "content": "how do i cook rice"},
                    {"role": "assistant", "content": "boil it"},
                    {"role": "user", "content": "and pasta"},
                    {"role": "assistant", "content": "boil it too"}]}
    for name in ("a.png", "b.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    cfg = DataConfig(prompt_column="q", messages_column="none", image_column="pic")
    plain = record_of(row, 0, None, Columns.of(cfg, tmp_path))
    assert plain.prompt == "how do i cook rice" and plain.images == (tmp_path / "a.png",
                                                                   tmp_path / "b.png")
    assert [part["type"] for part in plain.messages[0]["content"]] == ["image", "image", "text"]
    chat = record_of(row, 0, None, Columns.of(DataConfig(messages_column="chat"), None))
    # The last assistant turn is the answer; the turns before it are the prompt.
    assert chat.response == "boil it too" and chat.prompt is None
    assert [turn["role"] for turn in chat.messages] == ["system", "user", "assistant", "user"]
    with pytest.raises(RowProblem, match="2 image"):
        record_of({**row, "pic": ["a.png", "b.png"], "chat": [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}]},
            0, None, Columns.of(DataConfig(messages_column="chat", image_column="pic"), tmp_path))


def test_the_embedded_sets_keep_their_test_split_and_draw_validation_from_train():
    data = UserData(DataConfig(), "smollm2")
    assert [r.prompt for r in data.splits.records["test"]] == \
        [text for text, _ in prompt_pairs("smollm2", "test")]
    assert {r.source_split for r in data.splits.records["validation"]} == {"train"}
    digests = digests_of(data)
    assert not digests["validation"] & digests["train"]
