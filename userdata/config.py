"""`DataConfig`: the `data` key of every command that reads prompts (train, search, bench, export,
pipeline). `data=<source>` on the command line sets `data.source` (nas.commands)."""

from dataclasses import dataclass

RESPONSES = ("generate", "given")
ON_ERROR = ("fail", "skip")


@dataclass
class DataConfig:
    # shapes | smollm2 (the embedded sets) | a .jsonl, .json, .csv or .parquet file | a directory
    # written by `datasets`' save_to_disk | a dataset id in the local Hugging Face cache.
    # null: the embedded target's own set (a target of your own has none: give one).
    source: str | None = None
    # The split of a data set with several to draw every split from (null: its own train,
    # validation and test splits where it has them).
    split: str | None = None
    # Where a row keeps its prompt (a string) or its chat turns (a list of {role, content}), its
    # image(s) (file paths relative to the data file, or a `datasets` Image column; null: a column
    # named image or images) and a given answer.
    prompt_column: str = "prompt"
    messages_column: str = "messages"
    image_column: str | None = None
    response_column: str = "response"
    # generate: the target answers every training prompt (what the draft must imitate); given:
    # train on the data's own responses, teacher-forced.
    responses: str = "generate"
    # Fractions held out for validation (the search's sequences) and test (the bench's prompts)
    # when the data has no such split; chosen by record digest and `seed`.
    validation: float = 0.1
    test: float = 0.1
    seed: int = 0
    # fail: a bad row exits 2 naming it; skip: bad rows are left out, counted and reported.
    on_error: str = "fail"
