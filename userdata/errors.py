"""The one error type of `userdata`: data that cannot be used, said in one line that names the
file (or data set), the row and the field, and the fix. The CLI exits 2 with it."""


class DataError(ValueError):
    """A data source, file, row or field that cannot be used."""
