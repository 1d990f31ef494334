"""Symbolic injected-layer tokens of a space file and their resolution to target tap ids.

Tap ids follow transformers' `output_hidden_states` indexing: 0 = embeddings, l = output of
decoder layer l-1, num_layers = the last layer. A token is one of:
- `top`: the last tap (num_layers), the feature EAGLE-1 and DREAM read.
- `eagle3`: EAGLE-3's three taps 2, L//2, L-3 (the hidden states entering those layers),
  clamped to 1..L and deduplicated so that shallow targets still get valid taps.
- `entropy:N`: the N lowest-entropy intermediate taps of the calibration (fewer if the target
  has fewer intermediate layers).
- an integer tap id in 1..L.
"""

from collections.abc import Sequence

from search_spaces.errors import SpaceError

TapToken = str | int

TOP = "top"
EAGLE3 = "eagle3"
ENTROPY_PREFIX = "entropy:"


def parse_tap_token(value: object, key: str) -> TapToken:
    """Check one token as written in a space file; `key` locates it in the error message."""
    if isinstance(value, bool):
        raise SpaceError(f"{key}={value!r} is not a tap; use top, eagle3, entropy:N or a tap id")
    if isinstance(value, int):
        if value < 1:
            raise SpaceError(f"{key}={value} is not a decoder-layer tap; use a tap id >= 1")
        return value
    if value in (TOP, EAGLE3):
        return value
    if isinstance(value, str) and value.startswith(ENTROPY_PREFIX):
        count = value.removeprefix(ENTROPY_PREFIX)
        if count.isdigit() and int(count) >= 1:
            return value
    raise SpaceError(
        f"{key}={value!r} is not a tap; use top, eagle3, entropy:N (N >= 1) or a tap id"
    )


def uses_calibration(token: TapToken) -> bool:
    return isinstance(token, str) and token.startswith(ENTROPY_PREFIX)


def eagle3_taps(num_layers: int) -> tuple[int, ...]:
    wanted = (2, num_layers // 2, num_layers - 3)
    return tuple(sorted({min(max(tap, 1), num_layers) for tap in wanted}))


def resolve_taps(
    tokens: Sequence[TapToken], num_layers: int, ranked_candidates: Sequence[int] | None
) -> tuple[int, ...]:
    """Concrete, sorted, unique tap ids of one injected-layer choice."""
    taps: set[int] = set()
    for token in tokens:
        if token == TOP:
            taps.add(num_layers)
        elif token == EAGLE3:
            taps.update(eagle3_taps(num_layers))
        elif uses_calibration(token):
            if ranked_candidates is None:
                raise SpaceError(
                    f"injected_layers {token!r} needs calibrated candidate layers; "
                    "run nas.calibration.calibrate on this target first"
                )
            if not ranked_candidates:
                raise SpaceError(
                    f"injected_layers {token!r}: a {num_layers}-layer target has no intermediate "
                    "layer to rank; use a space without entropy:N (eagle) or a deeper target"
                )
            taps.update(ranked_candidates[: int(str(token).removeprefix(ENTROPY_PREFIX))])
        elif isinstance(token, int):
            if token > num_layers:
                raise SpaceError(
                    f"injected_layers tap {token} is outside the target's taps 1..{num_layers}; "
                    "use a tap id inside the target"
                )
            taps.add(token)
    return tuple(sorted(taps))
