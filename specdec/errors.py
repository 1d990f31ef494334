"""The one error type of `specdec`: bad input, said in one line that names the thing and the fix."""


class DraftError(ValueError):
    """A draft checkpoint, draft config or decode setting that cannot be used.

    Raised for a draft made for another target, a corrupted or truncated checkpoint, a config with
    missing or unknown keys, or decode settings that contradict each other. The CLI exits 2 with it.
    """
