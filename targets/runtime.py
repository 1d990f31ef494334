"""How a model's linear layers compute when it serves: the target's *runtime* (and its drafts').

A runtime is part of what a latency table is measured on and of what "lossless" means: every
method of a bench (vanilla and transformers' baselines included) runs the same runtime, and a
speculative decoder's greedy output equals that runtime's own greedy decoding.

- `none`: the weights as loaded (fp32 on a CPU: MKL's sgemm).
- `fp16`: each `nn.Linear` keeps its weight in float16 and multiplies it with fbgemm's fp16 GEMM
  (fp32 activations, fp32 accumulation). On a CPU decoding is memory-bound, and MKL's sgemm is
  slow exactly where speculative decoding needs it fast: with 2 to 32 input rows it repacks the
  whole weight on every call, so a forward over q tokens costs about what q single-token
  forwards cost. fbgemm keeps its weight prepacked: half the bytes per step, and extra rows are
  nearly free (experiments/latency.md has the measured curves). The served model is the one
  with weights rounded to float16. Rows are still computed independently of each other (no
  activation quantization shared across a batch), so verifying q tokens at once gives what q
  one-token steps give, up to float rounding, as fp32 does.

int8 dynamic quantization was measured too and is not offered: it quantizes a call's activations
with one scale for all its rows, so a token's logits depend on which other tokens share its
verification forward, and speculative output departs from the same model's greedy decoding.
Runtimes are for serving only: an fp16 linear has no weight to train or to save.
"""

import torch
from torch import nn

from targets.errors import TargetError

QUANTIZE = ("none", "fp16")


class Fp16Linear(nn.Module):
    """`nn.Linear` served by fbgemm's fp16 GEMM: weight prepacked once in float16."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        bias = None if linear.bias is None else linear.bias.detach().float()
        self._packed = torch.ops.quantized.linear_prepack_fp16(weight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic_fp16(x, self._packed)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fp16 weight"


def check_runtime(quantize: str, device: torch.device | str, dtype: torch.dtype) -> None:
    if quantize not in QUANTIZE:
        raise TargetError(f"quantize: unknown '{quantize}'; use one of {', '.join(QUANTIZE)}")
    if quantize == "fp16" and (torch.device(device).type != "cpu" or dtype != torch.float32):
        raise TargetError(
            f"quantize=fp16 is a CPU runtime for float32 models (fbgemm), not {device} "
            f"{str(dtype).removeprefix('torch.')}; on a GPU use dtype=bfloat16 and quantize=none"
        )


def serve(module: nn.Module, quantize: str) -> nn.Module:
    """`module` with its linear layers in runtime `quantize`: replaced in place, or a new module
    when `module` is itself a linear (none: unchanged). For a target, `Target` serves its text
    decoder and output head only: a vision tower runs once per prompt, and some families' vision
    code reads its linears' weights directly."""
    if quantize == "none":
        return module
    parameter = next(module.parameters(), None)
    if parameter is not None:
        check_runtime(quantize, parameter.device, parameter.dtype)
    if isinstance(module, nn.Linear):
        return Fp16Linear(module)
    for name, child in list(module.named_children()):
        setattr(module, name, serve(child, quantize))
    return module


def served_weight_bytes(module: nn.Module) -> int:
    """Bytes of weights one forward reads: every parameter and buffer but an input embedding's
    (a step reads a few of its rows; a tied output head reads it whole and counts it), fp16
    linears at 2 bytes a weight."""
    embedding_only = {id(p) for m in module.modules() if isinstance(m, nn.Embedding)
                      for p in m.parameters()}
    embedding_only -= {id(p) for m in module.modules() if isinstance(m, nn.Linear)
                       for p in m.parameters()}
    total = sum(t.numel() * t.element_size() for t in module.parameters()
                if id(t) not in embedding_only)
    total += sum(t.numel() * t.element_size() for t in module.buffers())
    total += sum(2 * m.in_features * m.out_features for m in module.modules()
                 if isinstance(m, Fp16Linear))
    return total
