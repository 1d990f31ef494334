"""Adaptive drafting's memory on a real model: a trained draft decoding with the shipped policy,
with the policy's previous memory (0.8 a step for drafted and plain steps alike: about 5 steps),
and drafting every step, beside vanilla. Greedy, the draft's recommended shape, the target's fp16
runtime (the CPU default); methods take turns prompt by prompt and each keeps one decoder, as in
experiments/adaptive_decoding.py, whose timing and table this reuses.

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 .venv/bin/python experiments/adaptive_memory.py \
        --target smollm2 --trained <draft> --prompts 16 --new-tokens 128 \
        --out experiments/adaptive_memory.json
"""


import torch
from adaptive_decoding import (  # experiments/, beside this script
    compare,
    greedy_references,
    test_prompts,
    turn_arguments,
)

from specdec import DraftModel, SpeculativeDecoder
from specdec.adaptive import AdaptiveDrafting, AlwaysDraft
from specdec.bench.methods import DecoderMethod
from specdec.recommended import ShapeKeys, shaped_config
from targets import load_target

# The policy before its drafted steps got a longer memory than its plain steps (specdec.adaptive).
PREVIOUS = {"decay": 0.8, "plain_decay": 0.8}


def methods(target, draft: DraftModel) -> list[DecoderMethod]:
    config, _ = shaped_config(draft.config.decode, ShapeKeys())
    found = [DecoderMethod("vanilla", "vanilla", SpeculativeDecoder(target, None))]
    for name, policy in ((f"adaptive, shipped memory ({config.shape.label})", AdaptiveDrafting()),
                         ("adaptive, previous memory", AdaptiveDrafting(**PREVIOUS)),
                         ("every step", AlwaysDraft())):
        decoder = SpeculativeDecoder(target, draft, config, policy)
        found.append(DecoderMethod(name, "draft", decoder))
    return found


def main() -> None:
    parser = turn_arguments(__doc__, target="smollm2", prompts=16, new_tokens=128, repeats=1)
    parser.add_argument("--quantize", default="fp16", help="the target's runtime: none | fp16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    target = load_target(args.target, quantize=args.quantize)
    prompts = test_prompts(target, args.target, args.prompts)
    references = greedy_references(target, prompts, args.new_tokens)
    candidates = methods(target, DraftModel.from_pretrained(args.trained, target))
    compare(target, prompts, candidates, references, args, quantize=args.quantize,
            trained_draft=args.trained)


if __name__ == "__main__":
    main()
