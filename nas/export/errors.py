"""The error type of `nas.export`: bad input to `draftnas export`, said in one line."""

from nas.user_errors import UserError


class ExportError(UserError):
    """A search run directory, trial choice or output format that export cannot use: names the
    file or key and the fix. A UserError, so the CLI exits 2 with it."""
