"""The CPU attention kernel on a real model, end to end: vanilla and a trained draft on the
target served with targets/attention.py's kernel (masked verification reads grouped key/value
heads in place) and on the same target with transformers' own sdpa (which copies the cache per
head group for every masked call), beside each other. Greedy, the draft's recommended shape,
adaptive decoding and early stop as the commands ship them, the fp16 runtime; methods take turns
prompt by prompt and each keeps one decoder, as in experiments/adaptive_decoding.py, whose timing
and table this reuses (cost / vanilla is over the first row's vanilla, on our kernel).

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 .venv/bin/python experiments/cpu_attention.py \
        --target smollm2 --trained <draft> --prompts 16 --new-tokens 128 \
        --out experiments/cpu_attention.json
"""

import argparse
import json
from pathlib import Path

import torch
from adaptive_decoding import (  # experiments/, beside this script
    greedy_references,
    markdown,
    summarize,
    timed_rounds,
)

from specdec import DraftModel, SpeculativeDecoder
from specdec.bench.methods import DecoderMethod, Sampling
from specdec.recommended import ShapeKeys, shaped_config
from targets import load_target
from userdata import prompt_set

STOP_BELOW = 0.2  # conf/bench.yaml's and conf/decode.yaml's default


def methods(targets: dict, trained: str) -> list[DecoderMethod]:
    found = []
    for kernel, target in targets.items():
        draft = DraftModel.from_pretrained(trained, target)
        config, _ = shaped_config(draft.config.decode, ShapeKeys(), stop_below=STOP_BELOW)
        suffix = "" if kernel == "ours" else f", {kernel}"
        found += [DecoderMethod(f"vanilla{suffix}", "vanilla", SpeculativeDecoder(target, None)),
                  DecoderMethod(f"draft, {config.shape.label}{suffix}", "draft",
                                SpeculativeDecoder(target, draft, config))]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="smollm2")
    parser.add_argument("--trained", required=True, help="a trained draft checkpoint directory")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ours = load_target(args.target, quantize="fp16")
    theirs = load_target(args.target, quantize="fp16")
    theirs.model.set_attn_implementation("sdpa")
    targets = {"ours": ours, "transformers' sdpa": theirs}
    prompts = [ours.prepare(prompt=text, images=[image] if image is not None else None)
               for text, image in prompt_set(args.target, "test", args.prompts)]
    sampling = Sampling(args.new_tokens)
    references = greedy_references(ours, prompts, args.new_tokens)
    candidates = methods(targets, args.trained)
    rounds, (load_before, load_after) = timed_rounds(candidates, prompts, sampling, args.repeats)
    rows = summarize(candidates, rounds, references)
    result = {"target": ours.spec, "quantize": "fp16", "prompts": len(prompts),
              "new_tokens": args.new_tokens, "threads": args.threads, "repeats": args.repeats,
              "trained_draft": args.trained, "stop_below": STOP_BELOW,
              "torch": torch.__version__,
              "load_average_1m": {"before": load_before, "after": load_after}, "rows": rows}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(rows))
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}")


if __name__ == "__main__":
    main()
