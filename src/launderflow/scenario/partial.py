"""A scenario that failed validation, kept as far as it is valid, so that its cross-references can
still be checked in the same pass (``validate`` reports field errors and unknown venues at once).

:func:`partial_scenario` validates the data against the schema; where a value fails, it keeps the
parts that do validate — models are built with ``model_construct`` from their valid fields, lists
and mappings keep their valid items — and puts ``None`` where nothing valid is left, at the same
index or key, so that every location stays the one the author wrote.
:func:`~launderflow.scenario.schema.reference_problems` skips the ``None`` values.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from .schema import Scenario

_ADAPTERS: dict[int, tuple[Any, TypeAdapter]] = {}  # by id: annotations need not be hashable
_FIELD_TYPES: dict[int, tuple[FieldInfo, Any]] = {}


def partial_scenario(data: dict[str, Any]) -> Scenario:
    """``data`` as a Scenario; values that fail validation are ``None`` (not a valid Scenario)."""
    return _lenient(Scenario, data)


def _adapter(annotation: Any) -> TypeAdapter:
    entry = _ADAPTERS.get(id(annotation))
    if entry is None or entry[0] is not annotation:
        entry = _ADAPTERS[id(annotation)] = (annotation, TypeAdapter(annotation))
    return entry[1]


def _field_type(field: FieldInfo) -> Any:
    """A model field's full type: its annotation with its constraints, validators and discriminator."""
    entry = _FIELD_TYPES.get(id(field))
    if entry is None or entry[0] is not field:
        extra = [FieldInfo(discriminator=field.discriminator)] if field.discriminator else []
        metadata = [*field.metadata, *extra]
        entry = _FIELD_TYPES[id(field)] = (field, Annotated[(field.annotation, *metadata)] if metadata else field.annotation)
    return entry[1]


def _valid(annotation: Any, value: Any) -> bool:
    try:
        _adapter(annotation).validate_python(value)
    except ValidationError:
        return False
    return True


def _lenient(annotation: Any, value: Any) -> Any:
    """``value`` validated as ``annotation``; failing that, its valid parts (see the module doc)."""
    try:
        return _adapter(annotation).validate_python(value)
    except ValidationError:
        pass
    discriminator = None
    while typing.get_origin(annotation) is Annotated:
        annotation, *metadata = typing.get_args(annotation)
        for meta in reversed(metadata):  # before-validators run last-to-first
            if isinstance(meta, BeforeValidator):
                try:
                    value = meta.func(value)  # type: ignore[call-arg]
                except (ValueError, TypeError):
                    return None
            discriminator = getattr(meta, "discriminator", None) or discriminator
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if discriminator and isinstance(value, dict):
            for member in members:
                tag = member.model_fields.get(discriminator)
                if tag is not None and value.get(discriminator) in typing.get_args(tag.annotation):
                    return _lenient(member, value)
            return None
        return _lenient(members[0], value) if len(members) == 1 else None
    if origin is list:
        return [_lenient(args[0], item) for item in value] if isinstance(value, list) else None
    if origin is dict:
        if not isinstance(value, dict):
            return None
        return {key: _lenient(args[1], item) for key, item in value.items() if _valid(args[0], key)}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(value, dict):
            return None
        fields = {name: _lenient(_field_type(field), value[name]) if name in value else None
                  for name, field in annotation.model_fields.items() if name in value or field.is_required()}
        return annotation.model_construct(**fields)
    return None
