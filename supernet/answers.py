"""The target's own greedy answers to prompts: what a draft learns to predict.

A text model answers a batch of prompts in one `generate` call (left-padded): on a CPU a forward
over many rows costs a few single-row forwards, so a corpus takes minutes instead of hours. A
vision-language model answers one prompt at a time through the speculative decoder without a
draft (its prompts carry images of their own, which families batch in different ways).
Both stop a row at its first EOS (kept) or after `max_new_tokens`.
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch

from specdec.decoder import SpeculativeDecoder
from targets import PreparedInputs

# Prompts per generate call of a text model. Measured on smollm2 (2 threads, 32 new tokens): 0.48 /
# 0.46 / 0.31 s a prompt at 16 / 32 / 64 rows; beyond that, rows that finished early wait longer for
# the longest, and a batch's memory grows with it.
BATCH = 64


def answer_batches(target: Any) -> bool:
    """Whether `target` answers prompts in batches (text models with a pad or EOS token)."""
    return not target.is_vlm and bool(target.eos_token_ids or _pad_id(target) is not None)


def target_answers(target: Any, prompts: Sequence[PreparedInputs], max_new_tokens: int,
                   done: Callable[[int], None] = lambda n: None) -> list[list[int]]:
    """Each prompt's greedy answer (token ids, EOS included); `done(n)` after every n answered."""
    if not answer_batches(target):
        decoder = SpeculativeDecoder(target, None)
        answers = []
        for prompt in prompts:
            answers.append(decoder.generate(inputs=prompt, max_new_tokens=max_new_tokens).token_ids)
            done(1)
        return answers
    answers = []
    for start in range(0, len(prompts), BATCH):
        chunk = prompts[start:start + BATCH]
        answers += _generate_batch(target, chunk, max_new_tokens)
        done(len(chunk))
    return answers


@torch.inference_mode()
def _generate_batch(target: Any, prompts: Sequence[PreparedInputs],
                    max_new_tokens: int) -> list[list[int]]:
    pad = _pad_id(target)
    pad = pad if pad is not None else target.eos_token_ids[0]
    rows = [prompt.input_ids[0] for prompt in prompts]
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long, device=target.device)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):  # left padding: every row's answer starts at column `width`
        ids[i, width - len(row):] = row
        mask[i, width - len(row):] = 1
    out = target.model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                max_new_tokens=max_new_tokens, eos_token_id=target.eos_token_ids,
                                pad_token_id=pad)
    eos = set(target.eos_token_ids)
    answers = []
    for row in out[:, width:].tolist():
        end = next((i + 1 for i, token in enumerate(row) if token in eos), len(row))
        answers.append(row[:end])
    return answers


def _pad_id(target: Any) -> int | None:
    tokenizer = getattr(target, "tokenizer", None)
    return getattr(tokenizer, "pad_token_id", None)
