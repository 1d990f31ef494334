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
    args = turn_arguments(__doc__, target="smollm2", prompts=16, new_tokens=128,
                          repeats=1).parse_args()
    torch.set_num_threads(args.threads)
    ours = load_target(args.target, quantize="fp16")
    theirs = load_target(args.target, quantize="fp16")
    theirs.model.set_attn_implementation("sdpa")
    prompts = test_prompts(ours, args.target, args.prompts)
    references = greedy_references(ours, prompts, args.new_tokens)
    candidates = methods({"ours": ours, "transformers' sdpa": theirs}, args.trained)
    compare(ours, prompts, candidates, references, args, quantize="fp16",
            trained_draft=args.trained, stop_below=STOP_BELOW)


if __name__ == "__main__":
    main()
