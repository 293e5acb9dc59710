"""A method's options, read from its ``Config`` dataclass: name, type, default, flags and help.

The CLI makes one flag per field from this (``rl-distill distill METHOD --help``), so a new field is a new
flag. The field's name stays the option's key (``RunSpec.options``, suite files, run records); its flags are
``--field-name`` unless the field lists others in ``field(metadata={"flags": (...)})``, the first one the name
shown first, the rest aliases (old or shared names). The help is the field's attribute docstring, the string
literal right after it in the class body. Core module: it imports no method.

The run's own settings (``RunSpec``, ``TrainConfig``) are flags the same way: :func:`flag` adds what a field's
type does not say (a repeatable flag, choices, a converter), and ``metadata=NO_FLAG`` keeps a field off the
command line (a library or bench setting).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import os
import re
import textwrap
import types
import typing
from typing import Any

FLAGS = "flags"
"""The ``metadata`` key of a field's flag names."""
ARGPARSE = "argparse"
"""The ``metadata`` key of a field's further argparse keywords (``action="append"``, ``choices``, ``metavar``)."""
CONVERT = "convert"
"""The ``metadata`` key of the function that turns a field's parsed words into its value."""
DEFAULT_TEXT = "default_text"
"""The ``metadata`` key of the function that says a ``None`` default's values (where they live elsewhere)."""
NO_FLAG = {"cli": False}
"""A field's ``metadata`` where it has no flag."""


def flag(*flags: str, convert: Any = None, default_text: Any = None, **argparse_keywords: Any) -> dict[str, Any]:
    """A field's ``metadata``: its option strings (none given: ``--field-name``; a name without dashes is a
    positional argument), argparse keywords beyond what its type gives, ``convert``, for a field with no
    command-line form of its own: the flag takes words (``KEY=VALUE ...``) and ``convert`` makes the value of them,
    and ``default_text``, for a ``None`` default that means values defined elsewhere (an env family's): a function
    that says them, so that the help states them without writing them again."""
    extra = {CONVERT: convert, DEFAULT_TEXT: default_text}
    return {FLAGS: flags, ARGPARSE: argparse_keywords} | {k: v for k, v in extra.items() if v is not None}


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
    argparse: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)
    """Further argparse keywords (:func:`flag`)."""
    convert: Any = None
    """What turns the flag's words into the field's value (:func:`flag`), or None."""
    default_text: Any = None
    """What says a ``None`` default's values for the help (:func:`flag`), or None."""


@functools.lru_cache(maxsize=None)
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
    """Every init field of a Config dataclass that has a flag (not ``NO_FLAG``), in field order."""
    return list(_options(cls))


@functools.lru_cache(maxsize=None)
def _options(cls: type) -> tuple[Option, ...]:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("cli", True) is False:
            continue
        convert = f.metadata.get(CONVERT)
        where = f"{cls.__module__}.{cls.__qualname__}.{f.name}"
        typ, optional, many = (str, False, True) if convert else _kind(hints[f.name], where)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        extra, text, doc = dict(f.metadata.get(ARGPARSE, {})), f.metadata.get(DEFAULT_TEXT), docs.get(f.name, "")
        out.append(Option(f.name, flags_of(f), typ, optional, many, default, doc, extra, convert, text))
    return tuple(out)


def _value_error(opt: Option, value: Any) -> str | None:
    """Why ``value`` cannot be ``opt``'s (its type, and for a number: finite), or None. Nothing is coerced: a bool,
    float or string where an int belongs is refused, as is nan or inf where a number belongs."""
    from rl_distill.errors import is_int, is_number

    if value is None:
        return None if opt.optional else "takes a value, not none"
    if opt.many:
        if not isinstance(value, (list, tuple)) or not value:
            return f"takes one or more values, got {value!r}"
        return next((why for v in value if (why := _value_error(dataclasses.replace(opt, many=False), v))), None)
    if opt.type is bool:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if opt.type is int:
        return None if is_int(value) else f"must be an integer, got {value!r}"
    if opt.type is float:
        if not is_number(value):
            return f"must be a number, got {value!r}"
        return None if math.isfinite(value) else f"must be a finite number, got {value!r}"
    return None if isinstance(value, str) else f"must be text, got {value!r}"


def check_values(cls: type, values: dict[str, Any]) -> None:
    """Each of ``values`` of its field's type (:func:`_value_error`), else one line naming the field's main flag;
    names that are not fields are left to the caller (it says which options the method has)."""
    from rl_distill.errors import UserTypeError, UserValueError

    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise UserTypeError(f"method options are a table of option names to values, got {values!r}")
    opts = {o.name: o for o in options(cls)}
    for name, value in values.items():
        opt = opts.get(name)
        why = _value_error(opt, value) if opt is not None else None
        if why:
            raise (UserValueError if "finite" in why else UserTypeError)(f"{opt.flags[0]} {why}")


def make_config(cls: type, values: dict[str, Any]) -> Any:
    """``cls(**values)`` for a method's Config, every value checked first against its field's type (no coercion,
    numbers finite), then by the Config's own ``__post_init__``; any refusal is one :class:`UserError` line that
    names the field by its main flag (:func:`flag_message`), never an alias or the bare field name."""
    from rl_distill.errors import UserError, UserValueError

    check_values(cls, values)
    try:
        return cls(**values)
    except UserError as e:
        raise type(e)(flag_message(cls, str(e))) from None
    except (TypeError, ValueError, ArithmeticError) as e:  # a check that met a value it did not expect
        raise UserValueError(flag_message(cls, f"invalid option: {str(e).splitlines()[0]}")) from None


_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def flag_message(cls: type, message: str, typed: dict[str, str] | None = None) -> str:
    """``message`` with every flag that names a field of ``cls`` (any of its flags, or ``--field-name``) written as
    the flag the user typed for that field (``typed``: field -> flag), else the field's main flag: a check that says
    ``--lambda`` or ``--lam`` reads ``--distill-weight`` to a user who typed that."""
    by_token: dict[str, Option] = {}
    for o in options(cls):
        for token in (*o.flags, "--" + o.name.replace("_", "-")):
            by_token.setdefault(token, o)
    typed = typed or {}

    def swap(m: re.Match) -> str:
        o = by_token.get(m.group(0))
        return m.group(0) if o is None else typed.get(o.name, o.flags[0])

    return _FLAG.sub(swap, message)


def _type_error(hint: Any, value: Any) -> str | None:
    """Why ``value`` does not have the type ``hint`` (an annotation: scalars, ``X | None``, lists, dicts, Any), or
    None; a bool is not an int and an int is a float, as elsewhere in the suite."""
    from rl_distill.errors import is_int, is_number

    origin = typing.get_origin(hint)
    if hint is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        whys = [_type_error(a, value) for a in args if a is not type(None)]
        return None if any(w is None for w in whys) else whys[0]
    if origin is list or hint is list:
        if not isinstance(value, (list, tuple)):
            return f"must be a list, got {value!r}"
        (elem,) = typing.get_args(hint) or (Any,)
        return next((w for v in value if (w := _type_error(elem, v))), None)
    if origin is dict or hint is dict:
        return None if isinstance(value, dict) else f"must be a table (dict), got {value!r}"
    if hint is bool:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if hint is int:
        return None if is_int(value) else f"must be an integer, got {value!r}"
    if hint is float:
        return None if is_number(value) else f"must be a number, got {value!r}"
    if hint is str:  # a path is text too (teachers, run folders)
        return None if isinstance(value, (str, os.PathLike)) else f"must be text, got {value!r}"
    return None


def check_types(obj: Any) -> None:
    """Every field of the dataclass instance ``obj`` of its annotated type, else a one-line
    :class:`~rl_distill.errors.UserTypeError` naming it as a flag (``--eval-episodes must be an integer, got 2.5``):
    what a library caller passes gets the CLI's checks, nothing coerced."""
    from rl_distill.errors import UserTypeError, flag

    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        why = _type_error(hints.get(f.name, Any), getattr(obj, f.name))
        if why:
            raise UserTypeError(f"{flag(f.name)} {why}")
