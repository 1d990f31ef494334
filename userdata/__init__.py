"""The prompts a draft is trained, searched and benched on: the user's data (JSON Lines, JSON, CSV
or Parquet files, Hugging Face `datasets`) or the embedded sets, as records of chat turns, images
and optional answers, in train / validation / test splits that never share a record, prepared for
a target. One `DataConfig` (the `data` key) serves every command."""

from userdata.config import DataConfig
from userdata.data import Prepared, UserData
from userdata.embedded import EMBEDDED_SETS, prompt_set
from userdata.errors import DataError

__all__ = ["EMBEDDED_SETS", "DataConfig", "DataError", "Prepared", "UserData", "prompt_set"]
