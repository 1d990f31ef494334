"""The supernet's user-facing error: a ValueError whose one-line message names the file and fix."""


class SupernetError(ValueError):
    """A supernet checkpoint or training setup that cannot be used as asked."""
