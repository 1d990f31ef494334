"""Every decoding method the bench compares, behind one interface: run one prompt, return the
tokens and a `DecodeStats` (tokens, steps, tau, acceptance by depth, time split).

- vanilla: our decoder without a draft (the plain target, one token per forward);
- draft: our decoder with a draft checkpoint (tree or chain, `DecodeConfig`);
- assisted: transformers' `generate(assistant_model=...)` with the distilled small LM;
- prompt_lookup: transformers' `generate(prompt_lookup_num_tokens=...)` (n-gram candidates from
  the prompt; their search is counted as overhead, not draft time).
The transformers baselines run the target's own HF model on the very same prepared inputs
(the processor's output for a VLM), with the same end-of-sequence tokens; on a VLM they suppress
the image placeholder token (see TransformersMethod.run).
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from transformers import PreTrainedModel

from specdec.bench.hf_forwards import ForwardLog
from specdec.decoder import SpeculativeDecoder, check_sampling
from specdec.model import DraftModel
from specdec.recommended import ShapeKeys, shaped_config
from specdec.stats import DecodeStats
from targets import PreparedInputs


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:  # before the bench loads or trains anything
        check_sampling(self.max_new_tokens, self.temperature, self.top_p)


@dataclass
class MethodRun:
    token_ids: list[int]
    stats: DecodeStats


class Method(Protocol):
    name: str  # unique row label
    kind: str  # vanilla | draft | assisted | prompt_lookup

    def run(self, prompt: PreparedInputs, sampling: Sampling) -> MethodRun: ...


@dataclass
class DecoderMethod:
    name: str
    kind: str
    decoder: SpeculativeDecoder

    def run(self, prompt: PreparedInputs, sampling: Sampling) -> MethodRun:
        generation = self.decoder.generate(
            inputs=prompt, max_new_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature, top_p=sampling.top_p, seed=sampling.seed)
        return MethodRun(generation.token_ids, generation.stats)


@dataclass
class TransformersMethod:
    name: str
    kind: str
    target: Any
    generate_kwargs: dict
    assistant: PreTrainedModel | None = None

    @torch.inference_mode()
    def run(self, prompt: PreparedInputs, sampling: Sampling) -> MethodRun:
        ids = prompt.input_ids
        eos = self.target.eos_token_ids
        kwargs = dict(self.generate_kwargs, attention_mask=torch.ones_like(ids),
                      max_new_tokens=sampling.max_new_tokens, eos_token_id=eos or None,
                      pad_token_id=eos[0] if eos else 0, **prompt.model_kwargs)
        if self.assistant is not None:
            kwargs["assistant_model"] = self.assistant
        if self.target.image_token_id is not None:
            # transformers verifies the first candidates together with the prompt's pixels, and an
            # image placeholder among them (prompt lookup copies them from the prompt) fails as
            # an image token without features; suppressing the placeholder keeps candidates
            # clean. It changes the output only if the target itself would emit a placeholder,
            # which the bench's equals_vanilla column would show.
            kwargs["suppress_tokens"] = [self.target.image_token_id]
        if sampling.temperature > 0:
            # top_k=0: no top-k filter, as in our decoder (transformers would default to 50).
            kwargs |= {"do_sample": True, "temperature": sampling.temperature,
                           "top_p": sampling.top_p, "top_k": 0}
            torch.manual_seed(sampling.seed)
        else:
            kwargs["do_sample"] = False
        with ForwardLog(self.target.model, self.assistant) as log:
            started = time.perf_counter()
            output = self.target.model.generate(ids, **kwargs)
            seconds = time.perf_counter() - started
        tokens = output[0, ids.shape[1]:].tolist()
        return MethodRun(tokens, log.stats(ids.shape[1], len(tokens), seconds))


# What a draft row of a VLM says its draft reads at image positions (DraftConfig.image_input).
READS_AT_IMAGES = {"placeholder": "image placeholders", "features": "image features"}


def vanilla_method(target: Any) -> DecoderMethod:
    return DecoderMethod("vanilla", "vanilla", SpeculativeDecoder(target, None))


def draft_method(target: Any, directory: str | Path, keys: ShapeKeys, adaptive: bool,
                 stop_below: float = 0.0, name: str | None = None) -> DecoderMethod:
    """Our decoder with the checkpoint in `directory` (a DraftError if it is not for `target`),
    decoding with its recommended shape under the shape `keys` given (specdec.recommended); the
    row's name (`name`, else the directory's: `draft_names`) says the shape (and its early stop,
    `stop_below`: DecodeConfig) and where it came from, and on a VLM what the draft reads at
    image positions (`[image features]` or `[image placeholders]`: DraftConfig.image_input)."""
    draft = DraftModel.from_pretrained(directory, target)
    config, source = shaped_config(draft.config.decode, keys, adaptive=adaptive,
                                   stop_below=stop_below)
    every_step = "" if config.adaptive else ", every step"
    stop = f" stopping below {stop_below:g}" if stop_below > 0 else ""
    name = name or draft_names([directory])[0]
    if target.is_vlm:
        name += f" [{READS_AT_IMAGES[draft.config.image_input]}]"
    label = f"draft:{name} ({config.shape.label}{stop}, {source}{every_step})"
    return DecoderMethod(label, "draft", SpeculativeDecoder(target, draft, config))


def draft_names(directories: list[str | Path]) -> list[str]:
    """A distinct name per draft directory: its own name, or the folder's above it when it is the
    `draft/` that `draftnas export` and `train` write (runs/qwen-export/draft -> qwen-export);
    a name that is still taken gets #2, #3..."""
    names: list[str] = []
    for directory in directories:
        path = Path(directory).resolve()
        name = path.parent.name if path.name == "draft" and path.parent.name else path.name
        taken = sum(1 for earlier in names if earlier.split("#")[0] == name)
        names.append(f"{name}#{taken + 1}" if taken else name)
    return names


def assisted_method(target: Any, assistant: PreTrainedModel, num_tokens: int) -> TransformersMethod:
    """A constant `num_tokens` candidates per step (transformers' default heuristic schedule
    carries state from one generate call to the next, which would make prompts depend on order)."""
    assistant.generation_config.num_assistant_tokens = num_tokens
    assistant.generation_config.num_assistant_tokens_schedule = "constant"
    return TransformersMethod(f"assisted (n={num_tokens})", "assisted", target, {}, assistant)


def prompt_lookup_method(target: Any, num_tokens: int) -> TransformersMethod:
    return TransformersMethod(f"prompt_lookup (n={num_tokens})", "prompt_lookup", target,
                              {"prompt_lookup_num_tokens": num_tokens})
