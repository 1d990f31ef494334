"""Greedy answers of `shapes` through `targets.load_target` versus transformers' own `generate`.

Usage: DRAFTNAS_HOME=/tmp/shapes_final HF_HUB_OFFLINE=1 .venv/bin/python \
    experiments/shapes_adapter_check.py --images 20
For the first N test images: the description and the first question, generated greedily by the
adapter (`nas.greedy.greedy_generate`) and by `model.generate(do_sample=False)`; prints how many
agree token for token and the adapter's accuracy on those prompts.
"""

import argparse
import json

import torch

from nas.greedy import greedy_generate
from targets import load_target
from targets.embedded.shapes import data
from targets.embedded.shapes.architecture import MAX_NEW_TOKENS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    arguments = parser.parse_args()

    target = load_target("shapes")
    images = data.load_images("test", arguments.images)
    first_questions = {}
    for record in data.qa_records("test", images):
        first_questions.setdefault(record.image_id, record)
    records = data.description_records("test", images) + list(first_questions.values())

    same, right = 0, 0
    for record in records:
        prepared = target.prepare(prompt=record.question, images=[record.image])
        adapter = greedy_generate(target, prepared, MAX_NEW_TOKENS)
        with torch.inference_mode():
            output = target.model.generate(prepared.input_ids, **prepared.model_kwargs,
                                           do_sample=False, max_new_tokens=MAX_NEW_TOKENS)
        reference = output[0, prepared.input_ids.shape[1]:].tolist()
        same += adapter == reference
        text = target.processor.tokenizer.decode(adapter, skip_special_tokens=True).strip()
        right += text == record.answer if record.question != data.DESCRIBE_PROMPT else 0
    print(json.dumps({
        "prompts": len(records),
        "adapter_equals_generate": same,
        "questions": len(first_questions),
        "adapter_question_accuracy": right / len(first_questions),
    }, indent=2))


if __name__ == "__main__":
    main()
