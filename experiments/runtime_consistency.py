"""Does a runtime verify q tokens as it decodes them one by one? (experiments/latency.md)

For each runtime, the target greedily answers prompts of the smollm2 test split; then, at every
q-th position of each answer, one forward over the next q answer tokens (a verification) is
compared with q one-token forwards over the same tokens (plain decoding): how often the argmax,
the token greedy decoding would emit, differs. A runtime whose rows depend on each other
(int8 dynamic quantization: one activation scale per call) changes the tokens speculative
decoding emits; fp32 and fp16 differ only by float rounding.

    python experiments/runtime_consistency.py --prompts 16 --tokens 96 --q 4 \
        --out experiments/runtime_consistency.json
"""

import argparse
import json
from pathlib import Path

import torch

from targets import crop_cache, load_target
from userdata.embedded import prompt_set

# int8: PyTorch's dynamic quantization of every linear (fbgemm), measured as a candidate runtime.
RUNTIMES = ("none", "fp16", "int8")


def runtime_target(runtime: str):
    if runtime != "int8":
        return load_target("smollm2", quantize=runtime)
    target = load_target("smollm2")
    torch.ao.quantization.quantize_dynamic(target.model, {torch.nn.Linear}, dtype=torch.qint8,
                                           inplace=True)
    return target


@torch.inference_mode()
def flips(target, prompts, tokens: int, q: int) -> tuple[int, int]:
    """(argmax disagreements, positions compared)."""
    differ = compared = 0
    for prompt in prompts:
        cache = target.new_cache()
        out = target.forward(prompt.input_ids, cache=cache, logits="last")
        answer = [int(out.logits[0, -1].argmax())]
        for _ in range(tokens - 1):  # the runtime's own greedy answer, one token a step
            out = target.forward(torch.tensor([answer[-1:]]), cache=cache, logits="last")
            answer.append(int(out.logits[0, -1].argmax()))
        start = prompt.input_ids.shape[1]
        for offset in range(0, tokens - q, q):
            crop_cache(cache, start + offset)
            chunk = torch.tensor([answer[offset:offset + q]])
            together = target.forward(chunk, cache=cache, logits="all").logits[0].argmax(-1)
            crop_cache(cache, start + offset)
            alone = [int(target.forward(chunk[:, i:i + 1], cache=cache, logits="last")
                         .logits[0, -1].argmax()) for i in range(q)]
            differ += sum(int(a) != b for a, b in zip(together.tolist(), alone, strict=True))
            compared += q
    return differ, compared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--q", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for runtime in RUNTIMES:
        target = runtime_target(runtime)
        prompts = [target.prepare(prompt=text) for text, _ in prompt_set("smollm2", "test", args.prompts)]
        differ, compared = flips(target, prompts, args.tokens, args.q)
        rows.append({"runtime": runtime, "q": args.q, "positions": compared, "flips": differ,
                     "flip_rate": round(differ / compared, 5)})
        print(rows[-1], flush=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
