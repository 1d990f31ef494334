"""Training and validation sequences: prompts followed by the target's own greedy responses.

Drafts learn to predict what the target will say, so the data is the target's output (DREAM,
EAGLE). Generating it costs one decode per prompt, so a corpus is made once and cached on disk
under a key of the target's fingerprint, the prompts and the response length: the same prompts on
the same target never decode twice, and another target never reuses them. `cached_corpus` is
that cache under a draftnas home, for one process or several (torchrun).
"""

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from specdec.decoder import SpeculativeDecoder
from specdec.vocab import most_frequent_tokens
from supernet.distributed import World, barrier
from targets import PreparedInputs


@dataclass
class CorpusItem:
    input_ids: torch.Tensor  # LongTensor [L]: prompt then response, on the CPU
    prompt_len: int
    model_kwargs: dict[str, Any]  # the prompt's pixel inputs and the like (CPU tensors)

    @property
    def response(self) -> torch.Tensor:
        return self.input_ids[self.prompt_len:]


def corpus_key(target: Any, prompts: Sequence[PreparedInputs], max_new_tokens: int) -> str:
    """Digest of what decides a corpus: target weights, every prompt tensor, response length."""
    digest = hashlib.sha256(f"{target.fingerprint}|{max_new_tokens}|{len(prompts)}".encode())
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


def build_corpus(target: Any, prompts: Sequence[PreparedInputs], max_new_tokens: int,
                 cache_dir: str | Path) -> list[CorpusItem]:
    """One item per prompt; loaded from `cache_dir` when this exact corpus was made before."""
    path = Path(cache_dir) / f"corpus-{corpus_key(target, prompts, max_new_tokens)}.pt"
    if path.is_file():
        return [CorpusItem(**item) for item in torch.load(path, weights_only=True)]
    decoder = SpeculativeDecoder(target, None)
    items = []
    for prompt in prompts:
        generated = decoder.generate(inputs=prompt, max_new_tokens=max_new_tokens)
        ids = torch.cat((prompt.input_ids[0].cpu(), torch.tensor(generated.token_ids)))
        kwargs = {name: value.cpu() if isinstance(value, torch.Tensor) else value
                  for name, value in prompt.model_kwargs.items()}
        items.append(CorpusItem(ids, prompt.input_ids.shape[1], kwargs))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    torch.save([vars(item) for item in items], partial)
    os.replace(partial, path)  # atomic: a killed run never leaves half a corpus behind
    return items


def cached_corpus(target: Any, prompts: Sequence[PreparedInputs], max_new_tokens: int,
                  home: Path, world: World | None = None) -> list[CorpusItem]:
    """`build_corpus` cached under `home/corpus`. Of several processes, the main one decodes
    and the others then read its cache."""
    cache = Path(home) / "corpus"
    main = world is None or world.is_main
    if main:
        corpus = build_corpus(target, prompts, max_new_tokens, cache)
    if world is not None:
        barrier(world)
    return corpus if main else build_corpus(target, prompts, max_new_tokens, cache)


def vocabulary_ranking(draft_vocab_sizes: Sequence[int | None], corpus: Sequence[CorpusItem],
                       target: Any) -> list[int]:
    """The corpus's most frequent response tokens first, as many as the largest reduced draft
    vocabulary among `draft_vocab_sizes` (none: [])."""
    size = max((size for size in draft_vocab_sizes if size), default=0)
    return most_frequent_tokens(response_tokens(corpus), size, target.vocab_size) if size else []


def response_tokens(corpus: Sequence[CorpusItem]) -> torch.Tensor:
    """Every response token of the corpus (what the reduced draft vocabulary is ranked on)."""
    return torch.cat([item.response for item in corpus])
