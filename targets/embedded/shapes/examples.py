"""Training sequences: chat-formatted token ids with the image expanded and loss on answers only.

An example is one image with either its description (one exchange) or a conversation of a few of
its easy-vqa questions (several short exchanges share the 64 image tokens, which dominate the cost
of a single one-word answer). Conversations are regrouped in a fresh seeded order every epoch.
"""

import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerFast

from targets.embedded.shapes.data import VqaRecord
from targets.embedded.shapes.tokenizer import ASSISTANT, END, IMAGE

IGNORE = -100


@dataclass(frozen=True)
class Example:
    image_index: int  # row of the pixel-values tensor
    input_ids: list[int]
    labels: list[int]


def chat_messages(exchanges: list[tuple[str, str]]) -> list[dict]:
    """User/assistant messages for (question, answer) pairs; the image comes with the first question."""
    messages = []
    for turn, (question, answer) in enumerate(exchanges):
        parts = ([{"type": "image"}] if turn == 0 else []) + [{"type": "text", "text": question}]
        messages.append({"role": "user", "content": parts})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


class ExampleEncoder:
    def __init__(self, tokenizer: PreTrainedTokenizerFast, image_tokens: int):
        self.tokenizer = tokenizer
        self.image_tokens = image_tokens
        self.image_id = tokenizer.convert_tokens_to_ids(IMAGE)
        self.assistant_id = tokenizer.convert_tokens_to_ids(ASSISTANT)
        self.end_id = tokenizer.convert_tokens_to_ids(END)

    def encode(self, image_index: int, exchanges: list[tuple[str, str]]) -> Example:
        text = self.tokenizer.apply_chat_template(chat_messages(exchanges), tokenize=False)
        ids: list[int] = []
        for token in self.tokenizer(text, add_special_tokens=False).input_ids:
            ids.extend([token] * self.image_tokens if token == self.image_id else [token])
        labels, answering = [], False
        for token in ids:
            labels.append(token if answering else IGNORE)
            if token == self.assistant_id:
                answering = True
            elif token == self.end_id:
                answering = False
        return Example(image_index, ids, labels)


def example_stream(
    encoder: ExampleEncoder,
    descriptions: list[VqaRecord],
    questions: list[VqaRecord],
    image_index: dict[int, int],
    per_conversation: int,
    seed: int,
) -> Iterator[Example]:
    """Endless shuffled epochs of description and question-conversation examples."""
    rng = random.Random(seed)
    descriptions_encoded = [
        encoder.encode(image_index[r.image_id], [(r.question, r.answer)]) for r in descriptions
    ]
    by_image: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for record in questions:
        by_image[record.image_id].append((record.question, record.answer))
    while True:
        epoch = list(descriptions_encoded)
        for image_id, exchanges in by_image.items():
            exchanges = rng.sample(exchanges, len(exchanges))
            for start in range(0, len(exchanges), per_conversation):
                chunk = exchanges[start:start + per_conversation]
                epoch.append(encoder.encode(image_index[image_id], chunk))
        rng.shuffle(epoch)
        yield from epoch


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch (training only: positions start at 0 in every row)."""
    length = max(len(example.input_ids) for example in examples)
    input_ids = torch.full((len(examples), length), pad_id)
    labels = torch.full((len(examples), length), IGNORE)
    attention_mask = torch.zeros((len(examples), length), dtype=torch.long)
    for row, example in enumerate(examples):
        size = len(example.input_ids)
        input_ids[row, :size] = torch.tensor(example.input_ids)
        labels[row, :size] = torch.tensor(example.labels)
        attention_mask[row, :size] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}
