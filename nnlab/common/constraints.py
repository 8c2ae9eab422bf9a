"""The one vocabulary of what a value may be, in the style of scikit-learn's parameter
constraints (``sklearn.utils._param_validation``): config options, sweep files and the records
nnlab reads back all state their values with these objects.

Each constraint says whether a value satisfies it (:meth:`Constraint.is_satisfied_by`),
describes itself for the one-line error (``str(c)``: "a number > 0", "one of sgd, adam"),
writes its JSON Schema fragment (:meth:`Constraint.json_schema`; nnlab.config.schema builds the
config's schema from them, so the schema and the loader cannot disagree) and gives a value in
the type its reader wants (:meth:`Constraint.normal`: a whole number written 100.0 as 100).
:meth:`Constraint.check` does all of it for a value found at a named place, raising
:class:`Mismatch`, which each reader words as its errors read.

Values are JSON's: a number with no fractional part is an integer (100.0 is 100) unless a
constraint says ``exact``, and no number is infinite or NaN.
"""

from __future__ import annotations

import difflib
import operator
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nnlab.common.yamlread import clip, shown
from nnlab.errors import ConfigError

LARGEST = sys.float_info.max  # JSON has no infinity: numbers stay within the floats' range


class Mismatch(Exception):
    """A value at ``where`` (a dotted path, "" for the whole) that does not satisfy
    ``expected`` (the constraint's words). ``reason`` is "missing" for a required key that is
    absent, "key" for a key that is not text (``value`` is then that key) and "unknown" for a
    key a closed mapping does not list."""

    def __init__(self, where: str, value: Any, expected: str, reason: str = ""):
        super().__init__(f"{where}: {expected}")
        self.where, self.value, self.expected, self.reason = where, value, expected, reason


class Constraint(ABC):
    """What a value must be. ``words`` replaces the constraint's own description."""

    words: str | None = None

    @abstractmethod
    def is_satisfied_by(self, value: Any) -> bool:
        """Whether ``value`` is one this constraint allows."""

    @abstractmethod
    def describe(self) -> str:
        """The values allowed, in words: "a number > 0"."""

    @abstractmethod
    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema fragment that allows the same values."""

    def plural(self) -> str:
        """The description of several such values, as a list describes its items."""
        return f"values that are each {self}"

    def normal(self, value: Any) -> Any:
        """A satisfying value in the type its reader wants."""
        return value

    def check(self, value: Any, where: str = "") -> Any:
        """``value`` normalised when it satisfies the constraint; :class:`Mismatch` otherwise."""
        if not self.is_satisfied_by(value):
            raise Mismatch(where, value, str(self))
        return self.normal(value)

    def __str__(self) -> str:
        return self.words or self.describe()


def _is_int(value: Any) -> bool:
    """A Python integer that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """An integer or a float, NaN and infinities included (a bool is not a number)."""
    return _is_int(value) or isinstance(value, float)


_BOUND_TESTS = {
    "minimum": operator.ge,
    "exclusiveMinimum": operator.gt,
    "maximum": operator.le,
    "exclusiveMaximum": operator.lt,
}


class _Bounded(Constraint):
    """A number between optional bounds, inclusive unless ``*_open``."""

    def __init__(
        self,
        low: float | None = None,
        high: float | None = None,
        *,
        low_open: bool = False,
        high_open: bool = False,
        words: str | None = None,
    ):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open
        self.words = words

    def _bounds(self) -> list[tuple[str, float]]:
        """(JSON Schema keyword, bound) pairs."""
        out = []
        if self.low is not None:
            out.append(("exclusiveMinimum" if self.low_open else "minimum", self.low))
        if self.high is not None:
            out.append(("exclusiveMaximum" if self.high_open else "maximum", self.high))
        return out

    def _within(self, value: Any, bounds: list[tuple[str, float]] | None = None) -> bool:
        """Inside every bound (NaN is inside none)."""
        return all(_BOUND_TESTS[k](value, b) for k, b in (bounds or self._bounds()))

    def _bounds_text(self) -> str:
        symbols = {
            "minimum": ">=",
            "exclusiveMinimum": ">",
            "maximum": "<=",
            "exclusiveMaximum": "<",
        }
        return " and ".join(f"{symbols[k]} {b}" for k, b in self._bounds())


class Integer(_Bounded):
    """An integer within bounds; a float with no fractional part counts (JSON's integers)
    unless ``exact``, and is read as the int. ``exact`` is for values nnlab parsed itself
    (a record it wrote, a count in a sweep file): JSON Schema cannot tell 1.0 from 1."""

    def __init__(self, low=None, high=None, *, exact: bool = False, **kw: Any):
        super().__init__(low, high, **kw)
        self.exact = exact

    def is_satisfied_by(self, value: Any) -> bool:
        whole = _is_int(value) or (
            not self.exact and isinstance(value, float) and value.is_integer()
        )
        return whole and self._within(value)

    def describe(self) -> str:
        bounds = self._bounds_text()
        return f"an integer {bounds}" if bounds else "an integer"

    def plural(self) -> str:
        bounds = self._bounds_text()
        return f"integers with every entry {bounds}" if bounds else "integers"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", **dict(self._bounds())}

    def normal(self, value: Any) -> Any:
        return int(value)


class Number(_Bounded):
    """A finite number within bounds; read as a float unless ``keep_type`` (a fraction
    beside a count, as a size's)."""

    def __init__(self, low=None, high=None, *, keep_type: bool = False, **kw: Any):
        super().__init__(low, high, **kw)
        self.keep_type = keep_type

    def _finite_bounds(self) -> list[tuple[str, float]]:
        bounds = dict(self._bounds())
        if self.low is None:
            bounds["minimum"] = -LARGEST
        if self.high is None:
            bounds["maximum"] = LARGEST
        return list(bounds.items())

    def is_satisfied_by(self, value: Any) -> bool:
        return _is_number(value) and self._within(value, self._finite_bounds())

    def describe(self) -> str:
        bounds = self._bounds_text()
        return f"a number {bounds}" if bounds else "a finite number"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "number", **dict(self._finite_bounds())}

    def normal(self, value: Any) -> Any:
        return value if self.keep_type else float(value)


class Text(Constraint):
    """A string of at least ``min_len`` characters."""

    def __init__(self, min_len: int = 0, *, words: str | None = None):
        self.min_len, self.words = min_len, words

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and len(value) >= self.min_len

    def describe(self) -> str:
        return "a non-empty string" if self.min_len else "text"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", **({"minLength": self.min_len} if self.min_len else {})}


class Boolean(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


def _same(a: Any, b: Any) -> bool:
    """JSON's equality: true is not 1, 1.0 is 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


class OneOf(Constraint):
    """One of the listed values (scikit-learn's StrOptions)."""

    def __init__(self, choices: Iterable[Any], *, words: str | None = None):
        self.choices, self.words = tuple(choices), words

    def is_satisfied_by(self, value: Any) -> bool:
        return any(_same(value, c) for c in self.choices)

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.choices))

    def json_schema(self) -> dict[str, Any]:
        return {"enum": list(self.choices)}


class Nullable(Constraint):
    """``inner``, or null."""

    def __init__(self, inner: Constraint):
        self.inner = inner

    def is_satisfied_by(self, value: Any) -> bool:
        return value is None or self.inner.is_satisfied_by(value)

    def describe(self) -> str:
        return f"{self.inner} (or null)"

    def json_schema(self) -> dict[str, Any]:
        return {"anyOf": [self.inner.json_schema(), {"type": "null"}]}

    def check(self, value: Any, where: str = "") -> Any:
        return None if value is None else self.inner.check(value, where)


class AnyOf(Constraint):
    """Any of several constraints; a value is read as the first it satisfies reads it."""

    def __init__(self, *options: Constraint, words: str | None = None):
        self.options, self.words = options, words

    def _first(self, value: Any) -> Constraint | None:
        return next((c for c in self.options if c.is_satisfied_by(value)), None)

    def is_satisfied_by(self, value: Any) -> bool:
        return self._first(value) is not None

    def describe(self) -> str:
        return " or ".join(map(str, self.options))

    def json_schema(self) -> dict[str, Any]:
        return {"anyOf": [c.json_schema() for c in self.options]}

    def normal(self, value: Any) -> Any:
        return self._first(value).normal(value)


class ListOf(Constraint):
    """A list of at least ``min_len`` items, each satisfying ``item`` (None: anything)."""

    def __init__(
        self, item: Constraint | None = None, min_len: int = 0, *, words: str | None = None
    ):
        self.item, self.min_len, self.words = item, min_len, words

    def is_satisfied_by(self, value: Any) -> bool:
        return (
            isinstance(value, list)
            and len(value) >= self.min_len
            and (self.item is None or all(self.item.is_satisfied_by(v) for v in value))
        )

    def describe(self) -> str:
        items = self.item.plural() if self.item else "values"
        return (
            f"a list of at least {self.min_len} {items}" if self.min_len else f"a list of {items}"
        )

    def json_schema(self) -> dict[str, Any]:
        items = {"items": self.item.json_schema()} if self.item else {}
        return {"type": "array", **items, "minItems": self.min_len}

    def normal(self, value: Any) -> Any:
        return value if self.item is None else [self.item.normal(v) for v in value]

    def check(self, value: Any, where: str = "") -> Any:
        if not isinstance(value, list) or len(value) < self.min_len:
            raise Mismatch(where, value, str(self))
        if self.item is None:
            return value
        return [self.item.check(v, f"{where}[{i}]") for i, v in enumerate(value)]


class Predicate(Constraint):
    """Whatever ``test`` accepts, described by ``words``; ``schema`` is its JSON Schema."""

    def __init__(self, words: str, test: Callable[[Any], bool], schema: dict | None = None):
        self.words, self.test, self.schema = words, test, schema or {}

    def is_satisfied_by(self, value: Any) -> bool:
        return self.test(value)

    def describe(self) -> str:
        return self.words

    def json_schema(self) -> dict[str, Any]:
        return dict(self.schema)


ANYTHING = Predicate("anything", lambda value: True)


def mapping(words: str = "a mapping") -> Predicate:
    """Any mapping (its keys and values are checked by whoever reads them)."""
    return Predicate(words, lambda value: isinstance(value, dict), {"type": "object"})


def key_text(key: str, limit: int = 40) -> str:
    """A key (a job id, a metric name) as a message names it: control characters escaped,
    cut short."""
    text = repr(key)[1:-1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inside(where: str, key: str) -> str:
    """The path of ``key`` within ``where``."""
    return f"{where}.{key_text(key)}" if where else key_text(key)


class Fields(Constraint):
    """A mapping with text keys: ``fields`` have their own constraints (``required`` ones
    must be there); any other key satisfies ``rest``, or is kept as it is when ``rest`` is
    None; ``closed`` refuses them. ``bracket`` names the other keys as ``where[key]``
    (job ids hold dots), else ``where.key``."""

    def __init__(
        self,
        words: str,
        fields: Mapping[str, Constraint] | None = None,
        required: tuple[str, ...] = (),
        rest: Constraint | None = None,
        *,
        bracket: bool = False,
        closed: bool = False,
    ):
        self.words, self.fields, self.required = words, dict(fields or {}), required
        self.rest, self.bracket, self.closed = rest, bracket, closed

    def describe(self) -> str:
        return self.words

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            self.check(value)
        except Mismatch:
            return False
        return True

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {k: c.json_schema() for k, c in self.fields.items()},
            "required": list(self.required),
            "additionalProperties": self.rest.json_schema() if self.rest else not self.closed,
        }

    def check(self, value: Any, where: str = "") -> Any:
        if not isinstance(value, dict):
            raise Mismatch(where, value, str(self))
        for key in self.required:
            if key not in value:
                raise Mismatch(inside(where, key), None, str(self.fields[key]), "missing")
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Mismatch(where, key, "text keys", "key")
            if self.closed and key not in self.fields:
                raise Mismatch(inside(where, key), item, "no such key", "unknown")
            shape = self.fields.get(key, self.rest)
            name = f"{where}[{key_text(key)}]" if self.bracket else inside(where, key)
            out[key] = item if shape is None else shape.check(item, name)
        return out


def require(value: Any, allowed: Constraint, where: str, error: type = ConfigError) -> Any:
    """``value`` normalised when it satisfies ``allowed``; else ``error`` in the one line
    every input error reads as: "<where> must be <allowed>; got <value>"."""
    if not allowed.is_satisfied_by(value):
        raise error(f"{where} must be {allowed}; got {shown(value)}")
    return allowed.normal(value)


def refuse_unknown_keys(
    mapping: Mapping[Any, Any], keys: OneOf, where: str, prefix: str = "", for_what: str = ""
) -> None:
    """ConfigError for the first key of ``mapping`` that ``keys`` does not list: "<where>:
    unknown key <prefix><key>[ (did you mean <prefix><close>?)][ <for_what>]; allowed: ..."."""
    for key in mapping:
        if not keys.is_satisfied_by(key):
            close = difflib.get_close_matches(str(key), list(map(str, keys.choices)), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            allowed = ", ".join(map(str, keys.choices)) or "no other keys"
            raise ConfigError(
                f"{where}: unknown key {prefix}{clip(str(key))}{hint}{for_what}; allowed: {allowed}"
            )
