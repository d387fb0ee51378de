"""The base of every config section, so that a task or a model kind can declare its own keys.

    class CopyData(Section):
        task: Literal["copy"] = "copy"
        delay: int = Field(50, ge=1, description="copy: T, the blank steps ...")

A section is strict (a string is not a number), forbids unknown keys (a typo cannot keep a
default), is frozen (a config never changes after validation; `derive` makes a new one) and
refuses control characters in strings (a terminal escape must not reach the screen). The
config layer (config/schema.py) puts the sections together. This module imports nothing from
echo_cli.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class Section(BaseModel):
    """One section of a config (data, model, train, eval), or a task's or kind's own keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: Any, info: ValidationInfo) -> Any:
        """No control characters in strings: a terminal escape must not reach the screen."""
        if isinstance(value, str):
            for i, char in enumerate(value):
                if unicodedata.category(char) == "Cc" and char not in "\t\n":
                    raise ValueError(f"holds a control character ({char!r} at position {i}); "
                                     f"remove it")
        return value
