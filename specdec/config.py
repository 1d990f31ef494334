"""`DraftConfig`: everything that defines a draft model, stored as the checkpoint's config.json.

The draft's own sizes (layers, heads, widths) sit beside the sizes and fingerprint of the target it
was made for, so that loading it next to the wrong target fails with one clear line.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specdec.errors import DraftError
from specdec.shape import DecodeShape

INTERACTIONS = ("concat", "cross_attention", "add", "none")
IMAGE_INPUTS = ("placeholder", "features")


@dataclass
class DraftConfig:
    """A draft model's architecture and the target it belongs to.

    interaction: how target features reach the draft. `concat`: EAGLE-3's first layer, attention
        over [norm(token embedding) ; norm(fc over the raw taps)] (specdec.model).
        `cross_attention`: every layer ends with a gated cross-attention block over the fused
        features (DREAM). `add`: embedding + fused features.
        `none`: tokens only, a classic small draft LM over the target's embeddings.
    injected_layers: target tap ids (0 = embeddings, l = output of target layer l-1) whose hidden
        states are projected (one projection each) and summed into the draft's feature stream.
    hidden_size / head_dim: the draft's width and per-head size; num_heads x head_dim need not
        equal hidden_size, so heads can be pruned without changing head_dim.
    vision_keep_ratio: fraction of image positions the draft keeps in its context (1 = all).
    image_input: what the draft reads at image positions. `placeholder`: the embedding of the
        image placeholder token, the same vector for every image (the draft sees the image only
        through the target's features, if it reads any). `features`: the target's own merged
        input embedding there (vision tower -> projector, what the target's first layer
        receives), handed over from the target's prefill (DREAM's and Spec-LLaVA's drafts).
    draft_vocab_size: None or 0 = full vocabulary through the target's lm_head; else an own head
        over that many most frequent target tokens (d2t/t2d maps, EAGLE-3 convention).
    decode: the decoding shape recommended for this draft (config.json: {"mode": "chain", "k": 3}
        or {"mode": "tree", "depth": 6, "top_k": 4, "total_tokens": 32}); None: the decoder's
        default. `draftnas search` picks it with the draft for one hardware (what it measured and
        predicted is in provenance["decode"]); `draftnas decode` and `draftnas bench` use it
        unless told otherwise (specdec.recommended).
    provenance: free-form record of where the draft came from (trial, training run, ...).
    """

    interaction: str
    injected_layers: list[int]
    num_layers: int
    num_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int
    vision_keep_ratio: float
    draft_vocab_size: int | None
    target_hidden_size: int
    target_vocab_size: int
    target_num_layers: int
    target_fingerprint: str
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    image_input: str = "placeholder"
    decode: DecodeShape | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.injected_layers = [int(layer) for layer in self.injected_layers]
        self.validate()

    @classmethod
    def for_target(cls, target: Any, **choices: Any) -> "DraftConfig":
        """A config for `target`: its sizes and fingerprint filled in, widths defaulting to its own.

        `choices` sets the draft's fields (interaction, injected_layers, num_layers, ...);
        unset fields default to one layer at the target's width with its head count. Heads
        keep the target's head size whatever their number, so a draft with pruned heads is a
        front slice of a wider one (the supernet relies on it, the latency tables are keyed by it).
        """
        hidden = choices.pop("hidden_size", target.hidden_size)
        num_heads = choices.pop("num_heads", target.num_heads)
        defaults: dict[str, Any] = {
            "interaction": "concat",
            "injected_layers": [target.num_layers],
            "num_layers": 1,
            "num_heads": num_heads,
            "head_dim": choices.pop("head_dim", target.hidden_size // target.num_heads),
            "hidden_size": hidden,
            "intermediate_size": 4 * hidden,
            "vision_keep_ratio": 1.0,
            "draft_vocab_size": None,
        }
        unknown = sorted(set(choices) - set(defaults)
                         - {"rms_norm_eps", "rope_theta", "image_input", "decode", "provenance"})
        if unknown:
            raise DraftError(f"DraftConfig.for_target: unknown field(s) {unknown}; "
                             f"known: {sorted(f.name for f in dataclasses.fields(cls))}")
        if choices.get("interaction") == "none" and "injected_layers" not in choices:
            choices["injected_layers"] = []
        return cls(**{**defaults, **choices},
                   target_hidden_size=target.hidden_size, target_vocab_size=target.vocab_size,
                   target_num_layers=target.num_layers, target_fingerprint=target.fingerprint)

    @property
    def uses_features(self) -> bool:
        return self.interaction != "none"

    @property
    def reduced_vocab(self) -> bool:
        return bool(self.draft_vocab_size)

    def validate(self) -> None:
        def bad(name: str, fix: str) -> DraftError:
            return DraftError(f"draft config field '{name}' = {getattr(self, name)!r}: {fix}")

        if self.interaction not in INTERACTIONS:
            raise bad("interaction", f"use one of {list(INTERACTIONS)}")
        if self.uses_features and not self.injected_layers:
            raise bad("injected_layers", f"interaction '{self.interaction}' needs >= 1 target layer")
        if not self.uses_features and self.injected_layers:
            raise bad("injected_layers", "interaction 'none' takes no target layers: use []")
        if len(set(self.injected_layers)) != len(self.injected_layers) or any(
            not 0 <= layer <= self.target_num_layers for layer in self.injected_layers
        ):
            raise bad("injected_layers",
                      f"use distinct tap ids in 0..{self.target_num_layers} (the target's layers)")
        for name in ("num_layers", "num_heads", "head_dim", "hidden_size", "intermediate_size",
                     "target_hidden_size", "target_vocab_size", "target_num_layers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise bad(name, "use a positive integer")
        if self.head_dim % 2:
            raise bad("head_dim", "use an even head size (rotary embeddings rotate pairs)")
        if not 0.0 < self.vision_keep_ratio <= 1.0:
            raise bad("vision_keep_ratio", "use a fraction in (0, 1]")
        if self.image_input not in IMAGE_INPUTS:
            raise bad("image_input", f"use one of {list(IMAGE_INPUTS)}")
        if self.draft_vocab_size is not None and not (
            isinstance(self.draft_vocab_size, int) and 0 <= self.draft_vocab_size <= self.target_vocab_size
        ):
            raise bad("draft_vocab_size",
                      f"use null/0 (full vocabulary) or 1..{self.target_vocab_size}")
        if self.decode is not None and not isinstance(self.decode, DecodeShape):
            raise bad("decode", "use null or a DecodeShape")
        if not isinstance(self.provenance, dict):
            raise bad("provenance", "use a JSON object")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["decode"] = None if self.decode is None else self.decode.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "draft config") -> "DraftConfig":
        """Strict: every field must be present and no other; `source` names the file in errors."""
        if not isinstance(data, dict):
            raise DraftError(f"{source}: expected a JSON object of draft config fields")
        names = {f.name for f in dataclasses.fields(cls)}
        # Drafts exported before shapes (or image inputs) were searched have no decode (or
        # image_input): they get the defaults.
        missing = sorted(names - set(data) - {"decode", "image_input"})
        unknown = sorted(set(data) - names)
        if missing:
            raise DraftError(f"{source}: missing key(s) {missing}; re-export the draft "
                             "or add them")
        if unknown:
            raise DraftError(f"{source}: unknown key(s) {unknown}; remove them "
                             f"(known: {sorted(names)})")
        decode = data.get("decode")
        try:
            shape = None if decode is None else DecodeShape.from_dict(decode)
        except DraftError as error:
            raise DraftError(f"{source}: draft config field 'decode' = {decode!r}: {error}") \
                from None
        try:
            return cls(**{**data, "decode": shape})
        except DraftError as error:
            raise DraftError(f"{source}: {error}") from None
        except (TypeError, ValueError) as error:
            raise DraftError(f"{source}: {error}; fix the value") from None

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "DraftConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise DraftError(f"{path}: no such file; point to a draft checkpoint directory") from None
        except json.JSONDecodeError as error:
            raise DraftError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}); "
                             "re-export the draft") from None
        return cls.from_dict(data, source=str(path))

