"""`Target`: one adapter over every supported HF model family (see DESIGN.md, `targets/`).

One `forward` serves prefill, decode and tree verification. The adapter always builds the 4D
attention masks itself (from explicit positions, an optional tree mask, sliding windows and
Gemma3's bidirectional image blocks) and keeps full KV in every layer, so cache crop/select and
tree masks are exact for every family.

Limits, by design:
- One sequence per cache: a batch shares the prompt layout; padded batches are not supported.
- Images come with the prefill call (Qwen mrope enforces it: rope_deltas are fixed there). Gemma3's
  bidirectional image attention applies within the call that carries `token_type_ids`.
- Sliding-window layers (Gemma3, Mistral) keep full KV and are windowed by the mask, so their cache
  grows with the context instead of rolling; that is what makes select/crop exact.
- Cropping into an image span is not meaningful (a fresh prefill of half an image does not exist).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import torch
from transformers import PreTrainedModel

from targets.attention import use_cpu_sdpa
from targets.cache import TargetCache
from targets.entropy import (
    attention_entropy_of,
    eager_attention,
    image_attention_scores,
)
from targets.errors import TargetError
from targets.families import family_of, image_token_id, layer_windows
from targets.families.masks import allowed_keys, image_blocks, layer_masks
from targets.families.mrope import mrope_positions
from targets.families.prompting import prepare_inputs
from targets.fingerprint import model_fingerprint
from targets.runtime import check_runtime, serve

# Arguments of the HF forward that the adapter computes itself for every call.
_SET_BY_ADAPTER = frozenset(
    {"input_ids", "inputs_embeds", "attention_mask", "position_ids", "cache", "past_key_values"}
)


# The tap whose hidden state is the input of the first decoder layer: the token embeddings with
# the image features merged in at image positions, as each family merges them (vision tower ->
# projector; Gemma3's scaled embeddings, Idefics3's and Qwen's merged patches). A prefill with
# this tap hands a draft the image as the target reads it, without a second vision pass.
MERGED_INPUT_TAP = 0


@dataclass
class PreparedInputs:
    input_ids: torch.Tensor  # LongTensor [1, T]
    model_kwargs: dict  # pixel_values, image_sizes, image_grid_thw, token_type_ids, ...
    image_mask: torch.Tensor  # BoolTensor [1, T], True at image placeholder tokens


@dataclass
class TargetOutput:
    logits: torch.Tensor | None  # [B, T, V] ("all"), [B, 1, V] ("last") or None
    hidden: dict[int, torch.Tensor]  # tap id -> [B, T, H]
    last_hidden: torch.Tensor  # [B, T, H], final-norm output that lm_head consumes
    image_scores: torch.Tensor | None  # [B, T]


class Target:
    """A frozen HF model (VLM or causal LM) behind one forward with explicit positions and masks."""

    def __init__(
        self,
        model: PreTrainedModel,
        *,
        spec: str,
        path: str | None = None,
        tokenizer=None,
        processor=None,
        quantize: str = "none",
    ):
        """quantize: the runtime its text decoder and head serve with (targets.runtime)."""
        model.eval().requires_grad_(False)
        self.model = model
        self.spec = spec
        self.path = path
        self.processor = processor
        self.tokenizer = tokenizer or getattr(processor, "tokenizer", None)
        traits = family_of(model.config)
        self.family = traits.name
        self.is_vlm = traits.is_vlm
        self._traits = traits
        text_config = model.config.get_text_config(decoder=True)
        self._text_config = text_config
        self.hidden_size = int(text_config.hidden_size)
        self.vocab_size = int(text_config.vocab_size)
        self.num_layers = int(text_config.num_hidden_layers)
        self.num_heads = int(text_config.num_attention_heads)
        self.max_positions = int(text_config.max_position_embeddings)
        self.eos_token_ids = _eos_token_ids(model)
        self.image_token_id = image_token_id(model.config)
        self._windows = layer_windows(text_config)
        self._layer_types = getattr(text_config, "layer_types", None)
        self._softcap = getattr(text_config, "final_logit_softcapping", None)
        parameter = next(model.parameters())
        self.device = parameter.device
        self.dtype = parameter.dtype
        check_runtime(quantize, self.device, self.dtype)
        use_cpu_sdpa(model)
        self.num_parameters = sum(p.numel() for p in model.parameters())  # as stored
        self.quantize = quantize
        if quantize != "none":
            # The fingerprint names the weights as stored, before the runtime repacks them.
            self.__dict__["fingerprint"] = model_fingerprint(model)
            serve(model.get_decoder(), quantize)
            model.set_output_embeddings(serve(model.get_output_embeddings(), quantize))

    @cached_property
    def fingerprint(self) -> str:
        return model_fingerprint(self.model)

    def __repr__(self) -> str:
        return (
            f"Target(spec={self.spec!r}, family={self.family!r}, layers={self.num_layers}, "
            f"hidden={self.hidden_size}, vocab={self.vocab_size})"
        )

    # -- inputs -------------------------------------------------------------------------------

    def prepare(self, prompt: str | None = None, images=None, inputs=None,
                messages: list[dict] | None = None) -> PreparedInputs:
        """A prompt or chat turns (+ images) through the chat template and processor, or a
        processor's output."""
        input_ids, model_kwargs = prepare_inputs(self, prompt=prompt, images=images, inputs=inputs,
                                                 messages=messages)
        if input_ids.ndim != 2:
            raise TargetError(
                f"inputs: input_ids has shape {tuple(input_ids.shape)}; pass a [1, T] batch"
            )
        if input_ids.shape[1] > self.max_positions:
            raise TargetError(
                f"prompt: {input_ids.shape[1]} tokens exceed the target's context of "
                f"{self.max_positions}; shorten the prompt"
            )
        input_ids = input_ids.to(self.device)
        model_kwargs = {key: _to_device(value, self) for key, value in model_kwargs.items()}
        return PreparedInputs(input_ids, model_kwargs, self.image_mask(input_ids))

    def image_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.image_token_id is None:
            return torch.zeros_like(input_ids, dtype=torch.bool)
        return input_ids == self.image_token_id

    # -- frozen pieces ------------------------------------------------------------------------

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """[B, T, H] input embeddings, scaled as the model scales them (Gemma's sqrt(h))."""
        return self.model.get_input_embeddings()(ids)

    def lm_head(self, hidden: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """Logits from last_hidden-space features, with the family's final softcap if any; with
        `columns` (token ids), only theirs, in that order (training's restricted vocabularies:
        a fraction of the head's cost). Columns need the weights as stored (no runtime)."""
        head = self.model.get_output_embeddings()
        if columns is None:
            logits = head(hidden)
        else:
            if self.quantize != "none":
                raise TargetError(f"lm_head columns need the head's weights as stored, not the "
                                  f"{self.quantize} runtime; load the target with quantize=none")
            bias = None if head.bias is None else head.bias[columns]
            logits = torch.nn.functional.linear(hidden, head.weight[columns], bias)
        if self._softcap is not None:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        return logits

    def new_cache(self) -> TargetCache:
        return TargetCache()

    # -- the forward --------------------------------------------------------------------------

    @torch.no_grad()
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: TargetCache,
        taps: Sequence[int] = (),
        model_kwargs: dict | None = None,
        logits: Literal["all", "last", "none"] = "all",
        image_scores: bool = False,
    ) -> TargetOutput:
        """Run new tokens after `cache` and append their KV (cache.length grows by T).

        `positions` [B, T] are plain sequence positions (default: cache.length + 0..T-1); a tree
        node at depth d after a prefix of P tokens has position P + d. `attention_mask` is an
        additive [B, 1, T, cache.length + T] mask (0 = attend); None means causal. Sliding windows
        are measured in positions, so a tree sees the window each branch would see fed alone.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise TargetError("forward: pass exactly one of input_ids or inputs_embeds")
        if logits not in ("all", "last", "none"):
            raise TargetError(f"forward: logits={logits!r}; use 'all', 'last' or 'none'")
        bad_taps = [tap for tap in taps if not 0 <= tap <= self.num_layers]
        if bad_taps:
            raise TargetError(f"taps {bad_taps} are outside 0..{self.num_layers}")
        tokens = input_ids if input_ids is not None else inputs_embeds
        batch, new = tokens.shape[0], tokens.shape[1]
        past = cache.length
        if positions is None:
            positions = torch.arange(past, past + new, device=self.device).expand(batch, new)
        positions = positions.to(self.device)
        model_kwargs = dict(model_kwargs or {})
        clashing = sorted(model_kwargs.keys() & _SET_BY_ADAPTER)
        if clashing:
            raise TargetError(
                f"model_kwargs: {', '.join(clashing)} are set by the adapter; "
                "pass prepare()'s model_kwargs (images and their extra keys only)"
            )

        masks = self._attention_masks(attention_mask, positions, cache, model_kwargs)
        if self._traits.uses_mrope:
            position_ids = mrope_positions(self.model, input_ids, positions, cache, model_kwargs)
        else:
            position_ids = positions

        call = dict(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=masks,
            position_ids=position_ids,
            cache=cache.hf,
            use_cache=True,
            output_hidden_states=bool(taps),
            output_attentions=image_scores,
            return_dict=True,
            **model_kwargs,
        )
        if image_scores:
            with eager_attention(self.model):
                out = self.model.model(**call)
        else:
            out = self.model.model(**call)
        cache.append(positions)

        last_hidden = out.last_hidden_state
        hidden = {tap: out.hidden_states[tap] for tap in taps}
        if logits == "all":
            head = self.lm_head(last_hidden)
        elif logits == "last":
            head = self.lm_head(last_hidden[:, -1:])
        else:
            head = None
        scores = None
        if image_scores:
            mask = self.image_mask(input_ids) if input_ids is not None else None
            scores = image_attention_scores(out.attentions[-1], mask, new)
        return TargetOutput(
            logits=head, hidden=hidden, last_hidden=last_hidden, image_scores=scores
        )

    def _attention_masks(
        self,
        attention_mask: torch.Tensor | None,
        positions: torch.Tensor,
        cache: TargetCache,
        model_kwargs: dict,
    ) -> torch.Tensor | dict[str, torch.Tensor] | None:
        """The masks for this call; None when transformers' own causal mask is the same thing.

        None lets sdpa take its causal fast path; it is only exact when no layer slides and no
        image block attends both ways, because the cache is contiguous slots of full KV.
        """
        batch, new = positions.shape
        image_types = model_kwargs.get("token_type_ids")
        bidirectional = self._traits.bidirectional_images and image_types is not None
        if attention_mask is None and not bidirectional and set(self._windows) == {None}:
            return None
        allowed = allowed_keys(attention_mask, batch, new, cache.length, self.device)
        if bidirectional:
            if image_types.shape[-1] != new:
                raise TargetError(
                    f"model_kwargs: token_type_ids cover {image_types.shape[-1]} tokens but this "
                    f"call feeds {new}; pass the processor's token_type_ids with its input_ids"
                )
            allowed = allowed.clone()
            allowed[..., cache.length :] |= image_blocks(image_types.to(self.device))
        key_positions = (
            positions if cache.positions is None else torch.cat([cache.positions, positions], dim=1)
        )
        return layer_masks(
            allowed, self._windows, self._layer_types, positions, key_positions, self.dtype
        )

    # -- calibration --------------------------------------------------------------------------

    @torch.no_grad()
    def attention_entropy(self, batches: Iterable[PreparedInputs]) -> torch.Tensor:
        """[num_layers]: mean over heads and tokens of each query's attention entropy."""
        total = torch.zeros(self.num_layers, dtype=torch.float64)
        count = 0
        with eager_attention(self.model):
            for prepared in batches:
                out = self.model.model(
                    input_ids=prepared.input_ids,
                    use_cache=False,
                    output_attentions=True,
                    return_dict=True,
                    **prepared.model_kwargs,
                )
                sums, seen = attention_entropy_of(out.attentions)
                total += sums.double().cpu()
                count += seen
        if count == 0:
            raise TargetError("attention_entropy: no batches given; pass calibration inputs")
        return (total / count).float()


def _eos_token_ids(model: PreTrainedModel) -> list[int]:
    generation = getattr(model, "generation_config", None)
    eos = getattr(generation, "eos_token_id", None)
    if eos is None:
        eos = model.config.get_text_config(decoder=True).eos_token_id
    if eos is None:
        return []
    return [int(eos)] if isinstance(eos, int) else [int(token) for token in eos]


def _to_device(value, target: Target):
    if not isinstance(value, torch.Tensor):
        return value
    if value.is_floating_point():
        return value.to(target.device, target.dtype)
    return value.to(target.device)
