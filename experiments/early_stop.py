"""Stopping a step's draft early on a real model: a trained draft decoding its recommended shape
with the tree's early stop at several thresholds (`DecodeConfig.stop_below`: the tree stops
growing once its best frontier node's cumulative draft probability is below it; 0 drafts the
whole shape), beside vanilla. Greedy, the shipped adaptive policy, the target's fp16 runtime;
methods take turns prompt by prompt and each keeps one decoder, as in
experiments/adaptive_decoding.py, whose timing and table this reuses. The prompts are test
prompts after the first `--offset`, which `draftnas bench` reports, so that the default chosen
here is not fitted to the bench's prompts.

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 .venv/bin/python experiments/early_stop.py \
        --target smollm2 --trained <draft> --prompts 16 --offset 16 --new-tokens 128 \
        --stops 0 0.1 0.2 0.3 --out experiments/early_stop.json
"""


import torch
from adaptive_decoding import (  # experiments/, beside this script
    compare,
    greedy_references,
    test_prompts,
    turn_arguments,
)

from specdec import DraftModel, SpeculativeDecoder
from specdec.bench.methods import DecoderMethod
from specdec.recommended import ShapeKeys, shaped_config
from targets import load_target


def methods(target, draft: DraftModel, stops: list[float]) -> list[DecoderMethod]:
    found = [DecoderMethod("vanilla", "vanilla", SpeculativeDecoder(target, None))]
    for stop in stops:
        config, _ = shaped_config(draft.config.decode, ShapeKeys(), stop_below=stop)
        found.append(DecoderMethod(f"{config.shape.label}, stop_below={stop}", "draft",
                                   SpeculativeDecoder(target, draft, config)))
    return found


def main() -> None:
    parser = turn_arguments(__doc__, target="smollm2", prompts=16, new_tokens=128, repeats=1)
    parser.add_argument("--quantize", default="fp16", help="the target's runtime: none | fp16")
    parser.add_argument("--offset", type=int, default=16)
    parser.add_argument("--stops", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    target = load_target(args.target, quantize=args.quantize)
    prompts = test_prompts(target, args.target, args.prompts, args.offset)
    references = greedy_references(target, prompts, args.new_tokens)
    candidates = methods(target, DraftModel.from_pretrained(args.trained, target), args.stops)
    compare(target, prompts, candidates, references, args, quantize=args.quantize,
            offset=args.offset, trained_draft=args.trained)


if __name__ == "__main__":
    main()
