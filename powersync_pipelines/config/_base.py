"""Shared pydantic base for every section of the sites file.

* Unknown keys are errors, so a typo never silently does nothing.
* No NaN or infinity in any number (``.nan`` / ``.inf`` in YAML), so a limit cannot silently vanish.
* No ``true``/``false`` where a number is expected: pydantic's lax mode reads ``capacity_kwh: true`` as 1 kWh.
  The check is one pass over each section's keys (a fleet file has 10,000 sites), with the fields that refuse
  booleans worked out once per model class from their annotations.
"""

from __future__ import annotations

import types
import typing
from typing import Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, model_validator


def _admits_bool(annotation: Any) -> bool:
    """Whether a value of type ``annotation`` may legitimately be a bool."""
    if annotation is bool or annotation is Any or annotation is object:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _admits_bool(typing.get_args(annotation)[0])
    if origin is Literal:
        return any(isinstance(a, bool) for a in typing.get_args(annotation))
    if origin is Union or origin is types.UnionType:
        return any(_admits_bool(a) for a in typing.get_args(annotation))
    return False


def _item_annotations(annotation: Any) -> tuple[Any, ...]:
    """Element types of a list/tuple annotation (empty for anything else)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _item_annotations(typing.get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return tuple(a for arg in typing.get_args(annotation) for a in _item_annotations(arg))
    if origin in (list, tuple, set, frozenset):
        return tuple(a for a in typing.get_args(annotation) if a is not Ellipsis)
    return ()


def _bool_inside(annotation: Any, value: Any) -> bool:
    """A bool where ``annotation`` wants something else, at any depth of lists/tuples."""
    if isinstance(value, bool):
        return not _admits_bool(annotation)
    if isinstance(value, list | tuple):
        items = _item_annotations(annotation)
        if not items:
            return False
        return any(_bool_inside(items[i] if len(items) > 1 and i < len(items) else items[0], v)
                   for i, v in enumerate(value))
    return False


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    _no_bool: ClassVar[dict[type, dict[str, Any]]] = {}

    @classmethod
    def _bool_free_fields(cls) -> dict[str, Any]:
        """Fields whose type refuses booleans somewhere (name -> annotation), computed once per class."""
        fields = StrictModel._no_bool.get(cls)
        if fields is None:
            fields = {name: f.annotation for name, f in cls.model_fields.items()
                      if not _admits_bool(f.annotation) and not _is_model(f.annotation)}
            StrictModel._no_bool[cls] = fields
        return fields

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fields = cls._bool_free_fields()
            for name, value in data.items():
                if (value.__class__ is bool or value.__class__ is list) and name in fields \
                        and _bool_inside(fields[name], value):
                    raise ValueError(f"{name}: true/false is not a {_kind(fields[name])} (got {value!r})")
        return data


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _kind(annotation: Any) -> str:
    text = str(annotation)
    if "int" in text or "float" in text:
        return "number"
    return "valid value here"
