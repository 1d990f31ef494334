"""The one error type of `search_spaces`: a bad space, arch or gene, said in one line."""


class SpaceError(ValueError):
    """A space file, dimension, choice, arch or gene vector that cannot be used.

    The message is one line that names the bad key or value and the fix; the CLI exits 2 with it.
    """
