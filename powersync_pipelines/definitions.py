"""The one Definitions object: everything under ``defs/`` is autoloaded."""

import warnings
from pathlib import Path

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
