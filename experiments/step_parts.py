"""Where a decoding step's time goes: the decoder's parts timed one by one (the target's forward by
the number of tokens it verifies, the target's head on the verified rows, the draft's tree, feeding
the draft the accepted slots, the cache crop, acceptance), per call, for vanilla and for a draft
drafting every step with its recommended shape. Greedy, the target's runtime, one thread.

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 .venv/bin/python experiments/step_parts.py \
        --target smollm2 --draft <draft> --prompts 5 --new-tokens 128
"""

import argparse
import time
from collections import defaultdict
from collections.abc import Callable

import torch

from specdec import DraftModel, SpeculativeDecoder
from specdec import decoder as decoder_module
from specdec.recommended import ShapeKeys, shaped_config
from specdec.verify import NodeLogits
from targets import load_target
from userdata import prompt_set


def timed(owner: object, name: str, part: Callable[..., str], log: dict[str, list[float]]) -> None:
    """Wrap owner.name so that each call's seconds land in log[part(*args)]."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = inner(*args, **kwargs)
        log[part(*args, **kwargs)].append(time.perf_counter() - start)
        return out

    setattr(owner, name, wrapper)


def parts_of(decoder: SpeculativeDecoder, prompts: list, new_tokens: int) -> dict[str, list[float]]:
    log: dict[str, list[float]] = defaultdict(list)
    target = decoder.target
    originals = {(NodeLogits, "_compute"): NodeLogits._compute,
                 (decoder_module, "_keep_path"): decoder_module._keep_path,
                 (decoder_module, "accept"): decoder_module.accept}
    timed(target, "forward", lambda ids, **_: f"target forward, {ids.shape[1]} tokens"
          if ids.shape[1] <= 32 else "target forward, prefill", log)
    timed(NodeLogits, "_compute", lambda _, nodes: f"target head, {len(nodes)} rows", log)
    timed(decoder_module, "_keep_path", lambda *_: "cache crop", log)
    timed(decoder_module, "accept", lambda *_: "acceptance", log)
    if decoder.draft is not None:
        timed(decoder, "_draft_tree", lambda *_: "draft tree", log)
        timed(decoder, "_draft_catch_up", lambda *_: "draft fed the accepted slots", log)
    try:
        decoder.generate(inputs=prompts[0], max_new_tokens=8)  # warm-up
        log.clear()
        for prompt in prompts:
            decoder.generate(inputs=prompt, max_new_tokens=new_tokens)
    finally:
        del target.forward  # the wrapper is an instance attribute over the class's method
        for (owner, name), original in originals.items():
            setattr(owner, name, original)
    return log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="smollm2")
    parser.add_argument("--quantize", default="fp16", help="the target's runtime: none | fp16")
    parser.add_argument("--draft", required=True, help="a trained draft checkpoint directory")
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    target = load_target(args.target, quantize=args.quantize)
    prompts = [target.prepare(prompt=text, images=[image] if image is not None else None)
               for text, image in prompt_set(args.target, "test", args.prompts)]
    draft = DraftModel.from_pretrained(args.draft, target)
    config, _ = shaped_config(draft.config.decode, ShapeKeys(), adaptive=False)
    for label, decoder in (("vanilla", SpeculativeDecoder(target, None)),
                           (f"draft, {config.shape.label}, every step",
                            SpeculativeDecoder(target, draft, config))):
        print(f"\n{label}\n\n| part | calls | ms a call | s in all |\n|---|---|---|---|")
        for part, seconds in sorted(parts_of(decoder, prompts, args.new_tokens).items()):
            print(f"| {part} | {len(seconds)} | {1000 * sum(seconds) / len(seconds):.2f} | "
                  f"{sum(seconds):.2f} |")


if __name__ == "__main__":
    main()
