"""The constraint vocabulary: each constraint checks a value, says what it allows in the words
an error repeats, writes the JSON Schema that allows the same values, and reads a value in the
type its reader wants."""

import jsonschema
import pytest

from nnlab.common.constraints import (
    AnyOf,
    Boolean,
    Fields,
    Integer,
    ListOf,
    Mismatch,
    Nullable,
    Number,
    OneOf,
    Text,
    refuse_unknown_keys,
    require,
)
from nnlab.errors import ConfigError

SIZE = AnyOf(Number(0, 1, high_open=True, keep_type=True), Integer(0), words="a size")
# constraint -> (its words, values it takes, values it refuses)
CASES = {
    "positive number": (
        Number(0, low_open=True),
        "a number > 0",
        [0.5, 3, 1e300],
        [0, -1, "1", True, None, float("inf"), float("nan"), 2**1100],
    ),
    "bounded integer": (
        Integer(1, 10),
        "an integer >= 1 and <= 10",
        [1, 10, 5.0],
        [0, 11, 2.5, True, "3", float("inf")],
    ),
    "exact integer": (Integer(0, exact=True), "an integer >= 0", [0, 7], [-1, False]),
    "any finite number": (Number(), "a finite number", [0, -2.5], [float("-inf"), "x"]),
    "text": (Text(), "text", ["", "a"], [1, None]),
    "non-empty text": (Text(1), "a non-empty string", ["a"], ["", 1]),
    "bool": (Boolean(), "true or false", [True, False], [0, 1, "true"]),
    "choices": (OneOf(("a", "b")), "one of a, b", ["a"], ["c", 1, None]),
    "nullable": (Nullable(Integer(0)), "an integer >= 0 (or null)", [None, 3], [-1, "x"]),
    "size": (SIZE, "a size", [0, 0.5, 3, 2.0], [1.5, -1, "x"]),
    "list": (
        ListOf(Integer(1), 2),
        "a list of at least 2 integers with every entry >= 1",
        [[1, 2], [3, 4, 5]],
        [[1], [0, 1], "1,2", None],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_constraint_checks_describes_itself_and_its_json_schema_agrees(case):
    constraint, words, good, bad = CASES[case]
    assert str(constraint) == words
    schema = jsonschema.Draft202012Validator(constraint.json_schema())
    for value in good:
        assert constraint.is_satisfied_by(value), value
        assert schema.is_valid(value), value
    for value in bad:
        assert not constraint.is_satisfied_by(value), value
        if value == value and abs(value if isinstance(value, float) else 0) != float("inf"):
            assert not schema.is_valid(value), value  # JSON holds no NaN or infinity


def test_values_are_read_in_the_type_their_reader_wants():
    assert Integer(0).is_satisfied_by(1.0) and not Integer(0, exact=True).is_satisfied_by(1.0)
    assert Integer(1).check(100.0) == 100 and isinstance(Integer(1).check(100.0), int)
    assert isinstance(Number().check(3), float)
    assert [SIZE.check(v) for v in (0, 0.0, 0.5, 2.0)] == [0, 0.0, 0.5, 2]
    assert isinstance(SIZE.check(0), int) and isinstance(SIZE.check(2.0), int)
    assert Nullable(Integer()).check(None) is None


def test_a_mismatch_names_where_it_is_and_what_was_expected():
    record = Fields(
        "a mapping: name, steps",
        {"name": Text(), "steps": ListOf(Integer(0, exact=True), words="a list of steps")},
        required=("name",),
    )
    assert record.check({"name": "x", "other": 1}) == {"name": "x", "other": 1}
    with pytest.raises(Mismatch) as missing:
        record.check({"steps": []}, "meta")
    assert (missing.value.where, missing.value.reason) == ("meta.name", "missing")
    with pytest.raises(Mismatch) as item:
        record.check({"name": "x", "steps": [1, -1]}, "meta")
    assert (item.value.where, item.value.value, item.value.expected) == (
        "meta.steps[1]",
        -1,
        "an integer >= 0",
    )
    with pytest.raises(Mismatch) as key:
        record.check({"name": "x", 3: 1})
    assert (key.value.reason, key.value.value) == ("key", 3)
    closed = Fields("rows and cols", {"rows": Text(), "cols": Text()}, closed=True)
    assert closed.is_satisfied_by({"rows": "a"}) and not closed.is_satisfied_by({"x": 1})


def test_input_errors_are_one_line_naming_the_place_and_what_is_allowed():
    with pytest.raises(ConfigError, match=r"^s.yaml: sweep.seeds must be an integer >= 0; got -1$"):
        require(-1, Integer(0), "s.yaml: sweep.seeds")
    keys = OneOf(("grid", "seeds"))
    refuse_unknown_keys({"grid": 1}, keys, "s.yaml", prefix="sweep.")
    with pytest.raises(ConfigError) as unknown:
        refuse_unknown_keys({"gird": 1}, keys, "s.yaml", prefix="sweep.")
    assert str(unknown.value) == (
        "s.yaml: unknown key sweep.gird (did you mean sweep.grid?); allowed: grid, seeds"
    )
