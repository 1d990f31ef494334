"""The small standalone draft LM for transformers' assisted generation (`assistant_model=`).

A plain LlamaForCausalLM over the target's own vocabulary (assisted generation needs the same
token ids), distilled from the target: it learns the target's greedy responses to training
prompts, never the bench prompts. Its embeddings start as the principal directions of the
target's embedding matrix, so tokens the target treats alike start out alike. Built once and
cached under `draftnas_home()/assistants/`, keyed by the target fingerprint, the recipe and the
training prompts; written to a temporary sibling and renamed, so a killed build leaves nothing.
"""

import dataclasses
import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import LlamaConfig, LlamaForCausalLM

from specdec.decoder import SpeculativeDecoder
from targets import PreparedInputs
from targets.home import draftnas_home
from targets.runtime import serve

# Bump when the distillation below changes: it is part of the cache key.
RECIPE_VERSION = 1
IGNORE = -100


@dataclass
class AssistantConfig:
    num_layers: int = 2
    hidden_size: int = 256
    num_heads: int = 4
    intermediate_size: int = 768
    train_prompts: int = 64  # how many training prompts the caller draws (never bench prompts)
    response_tokens: int = 64  # greedy target tokens per training prompt
    steps: int = 300
    batch_size: int = 8
    lr: float = 2e-3
    seed: int = 0


def assistant_key(target: Any, prompts: Sequence[PreparedInputs], cfg: AssistantConfig) -> str:
    digest = hashlib.sha256(f"{RECIPE_VERSION}|{target.fingerprint}|".encode())
    digest.update(repr(sorted(dataclasses.asdict(cfg).items())).encode())
    for prompt in prompts:
        digest.update(prompt.input_ids.cpu().numpy().tobytes())
    return digest.hexdigest()[:20]


def ensure_assistant(target: Any, prompts: Sequence[PreparedInputs], cfg: AssistantConfig,
                     home: Path | None = None) -> LlamaForCausalLM:
    """The distilled assistant for `target`, trained on `prompts` the first time it is asked for."""
    final = (home or draftnas_home()) / "assistants" / assistant_key(target, prompts, cfg)
    if not (final / "config.json").is_file():
        # Minutes on a CPU, once per target and recipe: say so, and how to spend less.
        tqdm.write(f"assisted baseline: distilling its assistant from the target ({len(prompts)} "
                   f"prompts, {cfg.steps} steps), once, cached under {final.parent} (quicker: "
                   "fewer assistant.steps= or assistant.train_prompts=; baselines=[prompt_lookup] "
                   "skips it)")
        final.parent.mkdir(parents=True, exist_ok=True)
        building = final.with_name(f".building-{final.name}-{os.getpid()}-{time.time_ns()}")
        try:
            distill(target, prompts, cfg).save_pretrained(building)
            os.replace(building, final)
        except OSError:
            if not (final / "config.json").is_file():  # not a lost race with another build
                raise
        finally:
            shutil.rmtree(building, ignore_errors=True)
    model = LlamaForCausalLM.from_pretrained(final, trust_remote_code=False, dtype=target.dtype)
    # The baseline's draft computes as the target does, as ours do (targets.runtime).
    model = model.to(target.device).eval().requires_grad_(False)
    return serve(model, getattr(target, "quantize", "none"))


def distill(target: Any, prompts: Sequence[PreparedInputs], cfg: AssistantConfig) -> LlamaForCausalLM:
    """Train a fresh assistant on the target's greedy responses to `prompts` (cross-entropy on
    the response tokens: at temperature 0 that is what assisted generation must match)."""
    if not prompts:
        raise ValueError("the assistant needs at least one training prompt")
    sequences = target_responses(target, prompts, cfg.response_tokens)
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=target.vocab_size, hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        max_position_embeddings=target.max_positions, tie_word_embeddings=True,
        eos_token_id=target.eos_token_ids or None,
    )).to(target.device)
    init_embeddings_from_target(model, target)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / cfg.steps)
    order = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for _ in tqdm(range(cfg.steps), desc="assistant: distilling", unit="step"):
        picked = torch.randint(len(sequences), (cfg.batch_size,), generator=order).tolist()
        batch = pad_batch([sequences[i] for i in picked], target.device)
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    return model.eval()


def target_responses(target: Any, prompts: Sequence[PreparedInputs],
                     max_new_tokens: int) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, the target's greedy response ids) per prompt."""
    decoder = SpeculativeDecoder(target, None)
    return [(prompt.input_ids[0].tolist(),
             decoder.generate(inputs=prompt, max_new_tokens=max_new_tokens).token_ids)
            for prompt in tqdm(prompts, desc="assistant: target responses", unit="prompt")]


@torch.no_grad()
def init_embeddings_from_target(model: LlamaForCausalLM, target: Any) -> None:
    """Project the target's token embeddings on their top principal directions; random init
    stays where the table has fewer directions (width or vocabulary) than the assistant's width."""
    table = target.model.get_input_embeddings().weight.detach().float()
    width = model.config.hidden_size
    if width > min(table.shape):
        return
    centred = table - table.mean(0)
    _, _, directions = torch.svd_lowrank(centred, q=width, niter=2)
    projected = centred @ directions
    own = model.get_input_embeddings().weight
    own.copy_((projected * (own.std() / projected.std())).to(own.dtype))


def pad_batch(sequences: list[tuple[list[int], list[int]]], device: torch.device) -> dict:
    """Right-padded ids, attention mask and labels that score the response tokens only."""
    length = max(len(prompt) + len(response) for prompt, response in sequences)
    ids = torch.zeros(len(sequences), length, dtype=torch.long)
    mask = torch.zeros(len(sequences), length, dtype=torch.long)
    labels = torch.full((len(sequences), length), IGNORE, dtype=torch.long)
    for row, (prompt, response) in enumerate(sequences):
        tokens = torch.tensor(prompt + response)
        ids[row, :len(tokens)] = tokens
        mask[row, :len(tokens)] = 1
        labels[row, len(prompt):len(tokens)] = tokens[len(prompt):]
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device),
            "labels": labels.to(device)}
