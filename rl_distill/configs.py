"""A method's options, read from its ``Config`` dataclass: name, type, default, flags and help.

The CLI makes one flag per field from this (``rl-distill distill METHOD --help``), so a new field is a new
flag. The field's name stays the option's key (``RunSpec.options``, suite files, run records); its flags are
``--field-name`` unless the field lists others in ``field(metadata={"flags": (...)})``, the first one the name
shown first, the rest aliases (old or shared names). The help is the field's attribute docstring, the string
literal right after it in the class body. Core module: it imports no method.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from typing import Any

FLAGS = "flags"
"""The ``metadata`` key of a field's flag names."""

SCALARS = (int, float, str, bool)


@dataclasses.dataclass(frozen=True)
class Option:
    """One Config field as a command-line option."""

    name: str
    """The field (the key in ``RunSpec.options`` and in suite files)."""
    flags: tuple[str, ...]
    """Its option strings, the first the main one."""
    type: type
    """int, float, str or bool; a list's element type."""
    optional: bool
    """``X | None``: ``none`` is a value."""
    many: bool
    """``list[X]``: one or more values."""
    default: Any
    """The dataclass default (``dataclasses.MISSING`` where there is none)."""
    help: str
    """The field's docstring on one line ("" where it has none)."""


def field_docs(cls: type) -> dict[str, str]:
    """Field -> attribute docstring (whitespace collapsed), along the MRO: a subclass's own docstring wins, a field
    it redefines without one keeps its base's."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):  # no source (a class made at run time)
            continue
        node = ast.parse(source).body[0]
        if not isinstance(node, ast.ClassDef):
            continue
        body = node.body
        for stmt, nxt in zip(body, body[1:]):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def _kind(annotation: Any, where: str) -> tuple[type, bool, bool]:
    """(scalar type, optional, many) of an annotation: X, X | None, list[X], list[X] | None."""
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"{where}: a union other than X | None has no command-line form ({annotation!r})")
        annotation, optional = rest[0], True
    many = typing.get_origin(annotation) is list
    if many:
        (annotation,) = typing.get_args(annotation) or (str,)
    if annotation not in SCALARS:
        raise TypeError(f"{where}: a {annotation!r} field has no command-line form (int, float, str, bool, lists)")
    return annotation, optional, many


def flags_of(f: dataclasses.Field) -> tuple[str, ...]:
    """A field's option strings: its metadata's, else ``--field-name``."""
    return tuple(f.metadata.get(FLAGS, ())) or ("--" + f.name.replace("_", "-"),)


def options(cls: type) -> list[Option]:
    """Every init field of a Config dataclass, in field order."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        typ, optional, many = _kind(hints[f.name], f"{cls.__module__}.{cls.__qualname__}.{f.name}")
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        out.append(Option(f.name, flags_of(f), typ, optional, many, default, docs.get(f.name, "")))
    return out
