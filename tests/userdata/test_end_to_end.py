"""A text model of your own and a `save_to_disk` dataset of chat turns with its own train and test
splits, through the whole pipeline with the smallest settings: it trains on the dataset's own
answers (data.responses=given), searches on validation rows drawn from its train split, and
benches on its test split. (The VLM family with a JSONL of images: tests/nas/test_pipeline.py.)"""

import json

import datasets
import torch
from tiny_text_dir import save_tiny_text_model
from transformers import AutoTokenizer

from nas.cli import main

QUESTIONS = ("how do i cook rice", "how do i cook pasta", "what is a good team sport",
             "what is the best way to travel to rome", "what is the best way to travel to paris")
TINY = [
    "budget=smoke", "prompts=6", "calibration_prompts=2", "max_new_tokens=6", "train.steps=1",
    "train.batch_size=1", "train.checkpoint_every=1", "train.sandwich.random_subnets=0",
    ("overrides.profile=['hardware.contexts=[64]','hardware.warmup=0','hardware.repeats=1',"
     "'hardware.budget_s=0.01','hardware.flush_mb=0','hardware.threads=1']"),
    "overrides.search=['n_trials=2','validation_prompts=2','max_new_tokens=6']",
    ("overrides.bench=['n_prompts=2','max_new_tokens=6','assistant.steps=2',"
     "'assistant.train_prompts=2','assistant.response_tokens=6','warmup=false','repeats=1']"),
]


def chat(index: int) -> dict:
    question = QUESTIONS[index % len(QUESTIONS)]
    return {"messages": [{"role": "system", "content": f"answer number {index}"},
                         {"role": "user", "content": question},
                         {"role": "assistant", "content": "the best way is to cook it"}]}


def test_a_text_model_and_a_saved_dataset_train_search_and_bench(tmp_path, monkeypatch):
    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    target = save_tiny_text_model(tmp_path / "my-text-model")
    saved = tmp_path / "my-chats"
    datasets.DatasetDict({
        "train": datasets.Dataset.from_list([chat(i) for i in range(30)]),
        "test": datasets.Dataset.from_list([chat(i) for i in range(30, 36)]),
    }).save_to_disk(str(saved))
    run_dir = tmp_path / "run"
    assert main(["pipeline", f"target={target}", f"data={saved}", "data.responses=given",
                 f"run_dir={run_dir}", f"tables_dir={tmp_path / 'tables'}", *TINY]) == 0
    used = {stage: json.loads((run_dir / stage / "result.json").read_text())["result"]["data"]
            for stage in ("02-train", "04-search", "09-bench")}
    train = used["02-train"]["splits"]["train"]
    assert train["from"] == "train" and len(train["rows"]) == 6
    assert used["02-train"]["responses"] == "given"
    validation = used["04-search"]["splits"]["validation"]
    assert validation["from"] == "train" and not set(validation["rows"]) & set(train["rows"])
    test = used["09-bench"]["splits"]["test"]
    assert test == {"from": "test", "rows": [0, 1]}
    summary = json.loads((run_dir / "result.json").read_text())["result"]["summary"]
    # No specllava draft for a text model (its question is what a draft reads at image positions).
    assert summary[0]["method"] == "vanilla" and len(summary) == 6
    assert not (run_dir / "08-train-specllava").exists()
    assert "specllava" not in json.loads((run_dir / "result.json").read_text())["result"]["drafts"]
    assert all(row["equals_vanilla"] for row in summary)
    # Trained on the dataset's own answers (cut to max_new_tokens): the corpus holds them.
    tokenizer = AutoTokenizer.from_pretrained(target, trust_remote_code=False)
    answer = tokenizer("the best way is to cook it", add_special_tokens=False)["input_ids"][:6]
    shards = [torch.load(path, weights_only=True)
              for path in (tmp_path / "home" / "corpus").rglob("*.pt")]
    assert any(len(shard) == 6 and all(item["input_ids"][item["prompt_len"]:].tolist() == answer
                                       for item in shard) for shard in shards)
