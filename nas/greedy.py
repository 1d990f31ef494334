"""Greedy generation through the target adapter: one prefill, then one forward per token.

Plain autoregressive decoding with the adapter's own cache and positions, the reference that
speculative decoding must reproduce at temperature 0.
"""

import torch

from targets import PreparedInputs, Target


@torch.no_grad()
def greedy_generate(target: Target, prepared: PreparedInputs, max_new_tokens: int) -> list[int]:
    """Token ids after the prompt, stopping after an end-of-sequence token or `max_new_tokens`."""
    cache = target.new_cache()
    # Positions default to the cache length, so each forward continues where the last one ended.
    out = target.forward(prepared.input_ids, cache=cache, model_kwargs=prepared.model_kwargs,
                         logits="last")
    produced: list[int] = []
    while True:
        token = int(out.logits[0, -1].argmax())
        produced.append(token)
        if token in target.eos_token_ids or len(produced) == max_new_tokens:
            return produced
        next_ids = torch.tensor([[token]], device=prepared.input_ids.device)
        out = target.forward(next_ids, cache=cache, logits="last")
