"""Training and validation sequences: prompts followed by the target's own greedy responses, or by
answers the data gives (`data.responses=given`, teacher-forced: DREAM trains so on mix665k).

Drafts learn to predict what the target will say, so the data is by default the target's output
(DREAM, EAGLE). Generating it costs one decode per prompt (a text model's in batches:
supernet.answers), so a corpus is made once and cached on disk, in shards, under a key of the
target's fingerprint, the prompts (a chat's earlier turns are part of its prompt), the response
length and how the answers were made (generated in batches or one by one, or given: then their
tokens too): the same prompts on the same target never decode twice, another target never reuses
them, and a killed build resumes. `cached_corpus` is that cache under a draftnas home, for one
process or several (torchrun).
"""

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from specdec.vocab import most_frequent_tokens
from supernet.answers import BATCH, answer_batches, target_answers
from supernet.distributed import World, barrier
from supernet.files import read_torch_file
from targets import PreparedInputs


@dataclass
class CorpusItem:
    input_ids: torch.Tensor  # LongTensor [L]: prompt then response, on the CPU
    prompt_len: int
    model_kwargs: dict[str, Any]  # the prompt's pixel inputs and the like (CPU tensors)

    @property
    def response(self) -> torch.Tensor:
        return self.input_ids[self.prompt_len:]


# Answers per shard file: a killed build keeps its finished shards and answers only the rest.
SHARD = 64


def corpus_key(target: Any, prompts: Sequence[PreparedInputs], max_new_tokens: int,
               responses: Sequence[list[int]] | None = None) -> str:
    """Digest of what decides a corpus: target weights, every prompt tensor, response length and
    how the answers are made: generated in batches or one by one (padding changes a few near
    ties), or given (`responses`, their tokens)."""
    method = "given" if responses is not None else \
        f"batch{BATCH}" if answer_batches(target) else "decoder"
    digest = hashlib.sha256(
        f"{target.fingerprint}|{max_new_tokens}|{len(prompts)}|{method}|{SHARD}".encode())
    for response in responses or ():
        digest.update(f"{response}".encode())
    for prompt in prompts:
        tensors = {"input_ids": prompt.input_ids, **prompt.model_kwargs}
        for name in sorted(tensors):
            value = tensors[name]
            digest.update(name.encode())
            if isinstance(value, torch.Tensor):
                digest.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
            else:
                digest.update(repr(value).encode())
    return digest.hexdigest()[:20]


def features_dir(home: Path, target: Any, prompts: Sequence[PreparedInputs],
                 max_new_tokens: int, responses: Sequence[list[int]] | None = None) -> Path:
    """Where the target's features of this corpus are cached (supernet.features): one directory
    per corpus, shared by every run that trains on it (a supernet, its winner, eagle, dream)."""
    return Path(home) / "features" / corpus_key(target, prompts, max_new_tokens, responses)


def build_corpus(target: Any, prompts: Sequence[PreparedInputs], max_new_tokens: int,
                 cache_dir: str | Path, progress: bool = True,
                 responses: Sequence[list[int]] | None = None,
                 shorten: str = "") -> list[CorpusItem]:
    """One item per prompt, the target's greedy answer after it (or its given answer in
    `responses`). Made in shards of SHARD prompts, each saved atomically under
    `cache_dir/corpus-<key>/` as soon as it is done: a corpus made before loads, and a killed
    build resumes at its first missing shard. `shorten`: how the caller's user makes it quicker,
    said when the target has answers to make."""
    folder = Path(cache_dir) / f"corpus-{corpus_key(target, prompts, max_new_tokens, responses)}"
    shards = range(0, len(prompts), SHARD)
    missing = any(not (folder / f"{start // SHARD:05d}.pt").is_file() for start in shards)
    generating = progress and missing and responses is None
    if generating:
        tqdm.write(f"target answers: {len(prompts)} prompts, up to {max_new_tokens} tokens each, "
                   f"cached under {folder}" + (f" (quicker: {shorten})" if shorten else ""))
    items: list[CorpusItem] = []
    with tqdm(total=len(prompts), desc="target answers", unit="prompt",
              disable=not generating, dynamic_ncols=True) as bar:
        for start in shards:
            path = folder / f"{start // SHARD:05d}.pt"
            chunk = prompts[start:start + SHARD]
            if path.is_file():
                cached = read_torch_file(path, "delete it: the shard is answered again next run")
                items += [CorpusItem(**item) for item in cached]
                bar.update(len(chunk))
                continue
            answers = (responses[start:start + SHARD] if responses is not None else
                       target_answers(target, chunk, max_new_tokens, bar.update))
            shard = [_item(prompt, answer) for prompt, answer in zip(chunk, answers, strict=True)]
            folder.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
            torch.save([vars(item) for item in shard], partial)
            os.replace(partial, path)  # atomic: a killed run never leaves half a shard behind
            items += shard
    return items


def _item(prompt: PreparedInputs, answer: list[int]) -> CorpusItem:
    ids = torch.cat((prompt.input_ids[0].cpu(), torch.tensor(answer, dtype=torch.long)))
    kwargs = {name: value.cpu() if isinstance(value, torch.Tensor) else value
              for name, value in prompt.model_kwargs.items()}
    return CorpusItem(ids, prompt.input_ids.shape[1], kwargs)


def cached_corpus(target: Any, prompts: Sequence[PreparedInputs], max_new_tokens: int,
                  home: Path, world: World | None = None,
                  responses: Sequence[list[int]] | None = None,
                  shorten: str = "") -> list[CorpusItem]:
    """`build_corpus` cached under `home/corpus`. Of several processes, the main one decodes
    and the others then read its cache."""
    cache = Path(home) / "corpus"
    main = world is None or world.is_main
    if main:
        corpus = build_corpus(target, prompts, max_new_tokens, cache, responses=responses,
                              shorten=shorten)
    if world is not None:
        barrier(world)
    return corpus if main else build_corpus(target, prompts, max_new_tokens, cache,
                                             responses=responses)


def vocabulary_ranking(draft_vocab_sizes: Sequence[int | None], corpus: Sequence[CorpusItem],
                       target: Any) -> list[int]:
    """The corpus's most frequent response tokens first, as many as the largest reduced draft
    vocabulary among `draft_vocab_sizes` (none: [])."""
    size = max((size for size in draft_vocab_sizes if size), default=0)
    return most_frequent_tokens(response_tokens(corpus), size, target.vocab_size) if size else []


def response_tokens(corpus: Sequence[CorpusItem]) -> torch.Tensor:
    """Every response token of the corpus (what the reduced draft vocabulary is ranked on)."""
    return torch.cat([item.response for item in corpus])
