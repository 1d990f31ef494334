"""The one error type of `targets`: bad input, said in one line that names the thing and the fix."""


class TargetError(ValueError):
    """A target spec, file, image or prompt that cannot be used. The CLI exits 2 with its message."""
