"""Shared pydantic base: unknown keys are errors, so a typo in the sites file never silently does nothing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
