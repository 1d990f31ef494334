"""What verifying q tokens costs against one plain step, per runtime (experiments/latency.md).

For each runtime (`none`: the weights as loaded, fp32; `fp16`: draftnas's CPU default; `int8`:
PyTorch's dynamic quantization, measured as a candidate and rejected as not lossless, see
runtime_consistency.py; `fp16-hf`: fp16 with transformers' own sdpa, which copies the grouped
key/value heads for every masked call, what draftnas served before targets/attention.py), the
target's causal forward over q new tokens after a KV cache of `ctx`
tokens, logits for every new token (what a verification computes). Runtimes are interleaved
round by round, so the machine's drift spreads over all of them alike; each figure is the
median over rounds of the mean of `--calls` calls. A latency table records the same curve per
context (`draftnas profile`), from fewer samples taken between its other parts.

    OMP_WAIT_POLICY=PASSIVE python experiments/verification_curve.py --contexts 128 512 \
        --rounds 7 --runtimes none fp16 fp16-hf int8 --out experiments/verification_curve.json
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from targets import crop_cache, load_target

QUERIES = (1, 2, 3, 4, 6, 8, 16, 32)
RUNTIMES = ("none", "fp16", "fp16-hf", "int8")


def runtime_target(name: str, runtime: str):
    if runtime == "fp16-hf":
        target = load_target(name, quantize="fp16")
        target.model.set_attn_implementation("sdpa")
        return target
    if runtime != "int8":
        return load_target(name, quantize=runtime)
    target = load_target(name)
    torch.ao.quantization.quantize_dynamic(target.model, {torch.nn.Linear}, dtype=torch.qint8,
                                           inplace=True)
    return target


@torch.inference_mode()
def forward_ms(target, cache, ctx: int, q: int, calls: int) -> float:
    """Mean ms of a q-token forward after `ctx` cached tokens (the cache cropped back each call)."""
    tokens = torch.randint(10, 1000, (1, q))
    target.forward(tokens, cache=cache, logits="all")  # warm-up
    crop_cache(cache, ctx)
    start = time.perf_counter()
    for _ in range(calls):
        target.forward(tokens, cache=cache, logits="all")
        crop_cache(cache, ctx)
    return (time.perf_counter() - start) / calls * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="smollm2")
    parser.add_argument("--contexts", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    targets = {runtime: runtime_target(args.target, runtime) for runtime in args.runtimes}
    samples = {(runtime, ctx, q): [] for runtime in args.runtimes for ctx in args.contexts
               for q in QUERIES}
    with torch.inference_mode():
        caches = {}
        for runtime, target in targets.items():
            for ctx in args.contexts:
                cache = target.new_cache()
                target.forward(torch.randint(10, 1000, (1, ctx)), cache=cache, logits="none")
                caches[runtime, ctx] = cache
    for round_ in range(args.rounds):
        for runtime, target in targets.items():
            for ctx in args.contexts:
                for q in QUERIES:
                    samples[runtime, ctx, q].append(
                        forward_ms(target, caches[runtime, ctx], ctx, q, args.calls))
        print(f"round {round_ + 1}/{args.rounds}", flush=True)
    rows = []
    for runtime in args.runtimes:
        for ctx in args.contexts:
            one = statistics.median(samples[runtime, ctx, 1])
            ms = {q: statistics.median(samples[runtime, ctx, q]) for q in QUERIES}
            rows.append({"runtime": runtime, "ctx": ctx, "t1_ms": round(one, 2),
                         "ratio": {q: round(ms[q] / one, 3) for q in QUERIES}})
            print(f"{runtime:5s} ctx {ctx:4d}: T(1) {one:6.1f} ms; " + ", ".join(
                f"q={q} {ms[q] / one:.2f}" for q in QUERIES), flush=True)
    args.out.write_text(json.dumps({"target": args.target, "threads": args.threads,
                                    "rounds": args.rounds, "calls": args.calls,
                                    "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
