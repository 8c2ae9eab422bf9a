"""Reading a user's own table for the MLP: CSV and .npz files, and every way they can be wrong.

Each CSV case runs two ways: as written (a plain file, which goes NumPy's fast way) and with
its first cell quoted (which sends the whole file through the csv module), with blocks of
two rows so that block boundaries are crossed too.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nnlab.data.tables import Table, _csv, _rows, read_csv, read_npz
from nnlab.errors import DataError

ROOT = Path(__file__).resolve().parents[2]


def quote_first_cell(text: str) -> str:
    """The same table with its first cell quoted: the file then has a quote character."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    match = re.match(r"[^,;\t\n]*", text[len(bom) :])
    assert match is not None and '"' not in match.group()
    return f'{bom}"{match.group()}"{text[len(bom) + match.end() :]}'


@pytest.fixture(params=["plain", "quoted"])
def way(request, monkeypatch):
    monkeypatch.setattr(_rows, "CHUNK_ROWS", 2)
    return request.param


@pytest.fixture
def write(tmp_path, way):
    """write(text, name) -> the path of a CSV file holding text (first cell quoted on the
    'quoted' way)."""

    def write(text: str, name: str = "table.csv") -> Path:
        path = tmp_path / name
        path.write_text(quote_first_cell(text) if way == "quoted" else text, encoding="utf-8")
        return path

    return write


def error(read, path, *args, **kwargs) -> str:
    """The message of the DataError that read(path, ...) raises, checked to be one line that
    names the file."""
    with pytest.raises(DataError) as info:
        read(path, *args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    assert str(path) in message, message
    return message


def check_table(table: Table) -> None:
    """The invariants every Table keeps."""
    assert table.X.dtype == np.float64 and table.X.ndim == 2
    assert table.X.flags.c_contiguous
    assert np.isfinite(table.X).all()
    assert table.labels.dtype == np.int64 and table.labels.shape == (table.X.shape[0],)
    assert table.labels.min() >= 0 and table.labels.max() < len(table.class_names)
    assert len(table.feature_names) == table.X.shape[1]


def read(path, **kwargs) -> Table:
    table = read_csv(path, **kwargs)
    check_table(table)
    return table


# ----------------------------------------------------------------------------- CSV: reading


def test_header_detected(write):
    t = read(write("alcohol,ash,class\n14.2,2.4,class_0\n13.2,2.1,class_1\n"))
    assert t.feature_names == ["alcohol", "ash"]
    assert t.X.tolist() == [[14.2, 2.4], [13.2, 2.1]]
    assert t.class_names == ["class_0", "class_1"]


def test_no_header_detected(write):
    t = read(write("14.2,2.4,class_0\n13.2,2.1,class_1\n12.0,1.5,class_0\n"))
    assert t.feature_names == ["x1", "x2"]
    assert t.X.tolist() == [[14.2, 2.4], [13.2, 2.1], [12.0, 1.5]]
    assert t.labels.tolist() == [0, 1, 0]


def test_numeric_labels_are_no_evidence_of_a_header(write):
    # every column is numeric in both rows: data, not a header
    t = read(write("1,2,0\n3,4,1\n"))
    assert t.X.tolist() == [[1, 2], [3, 4]]


def test_one_text_column_is_enough_for_a_header(write):
    # only the first column changes from text to a number; the others are text in both rows
    t = read(write("a,kind,label\n1,x,p\n2,y,q\n"), features=["a"])
    assert t.feature_names == ["a"] and t.X.tolist() == [[1], [2]]


def test_an_empty_cell_in_line_1_is_not_taken_for_a_header(write):
    # a missing value in the first data row must not turn it into a header
    message = error(read_csv, write("1,,x\n3,4,y\n"))
    assert "line 1, column 'x2' (index 1)" in message and "empty cell" in message


def test_header_forced(write):
    path = write("10,20,c\n1,2,x\n3,4,y\n")
    assert read(path).X.shape == (3, 2)  # numbers only in line 1: not detected
    t = read(path, header=True)
    assert t.feature_names == ["10", "20"] and t.X.tolist() == [[1, 2], [3, 4]]


def test_header_refused(write):
    message = error(read_csv, write("a,b,c\n1,2,x\n3,4,y\n"), header=False)
    assert "line 1, column 'x1' (index 0): 'a' is not a number" in message
    assert "set data.header: true" in message


def test_target_by_name_index_and_negative_index(write):
    path = write("a,kind,b\n1,x,2\n3,y,4\n5,x,6\n")
    for target in ["kind", 1, -2, np.int64(1)]:
        t = read(path, target=target)
        assert t.feature_names == ["a", "b"], target
        assert t.X.tolist() == [[1, 2], [3, 4], [5, 6]], target
        assert t.class_names == ["x", "y"] and t.labels.tolist() == [0, 1, 0], target


def test_default_target_is_the_last_column(write):
    t = read(write("a,b,c\n1,2,3\n4,5,6\n"))
    assert t.feature_names == ["a", "b"] and t.class_names == ["3", "6"]


def test_target_first_column_without_header(write):
    t = read(write("x,1,2\ny,3,4\n"), target=0)
    assert t.feature_names == ["x2", "x3"]  # named by position, the target keeps its place
    assert t.X.tolist() == [[1, 2], [3, 4]] and t.class_names == ["x", "y"]


def test_an_int_looking_string_is_a_name(write):
    path = write("1,a,b\nx,2,3\ny,4,5\n")
    by_name = read(path, target="1")
    assert by_name.class_names == ["x", "y"] and by_name.feature_names == ["a", "b"]
    by_index = read(path, target=1, features=["b"])
    assert by_index.class_names == ["2", "4"] and by_index.feature_names == ["b"]


def test_features_by_name_and_index_in_the_order_given(write):
    path = write("a,b,c,label\n1,2,3,x\n4,5,6,y\n")
    for features in (["c", "a"], [2, 0], [-2, "a"]):
        t = read(path, features=features)
        assert t.feature_names == ["c", "a"], features
        assert t.X.tolist() == [[3, 1], [6, 4]], features


def test_string_labels_round_trip(write):
    t = read(write("f,animal\n1,dog\n2,cat\n3,bird\n4,cat\n5,Dog\n"))
    assert t.class_names == ["Dog", "bird", "cat", "dog"]  # by code point
    assert t.labels.tolist() == [3, 2, 1, 2, 0]
    assert [t.class_names[i] for i in t.labels] == ["dog", "cat", "bird", "cat", "Dog"]


def test_numeric_labels_sorted_numerically(write):
    t = read(write("f,y\n1,10\n2,9\n3,1.0\n4, 1 \n5,-2\n6,2e0\n7,0.5\n"))
    assert t.class_names == ["-2", "0.5", "1", "2", "9", "10"]
    assert t.labels.tolist() == [5, 4, 2, 2, 0, 3, 1]


def test_mixed_labels_are_all_strings(write):
    t = read(write("f,y\n1,10\n2,9\n3,a\n4,1.0\n5,1\n"))
    assert t.class_names == ["1", "1.0", "10", "9", "a"]
    assert t.labels.tolist() == [2, 3, 4, 1, 0]


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab(write, delimiter):
    text = "a,b,class\n1.5,-2,x\n3,4e-1,y\n".replace(",", delimiter)
    t = read(write(text))
    assert t.feature_names == ["a", "b"]
    assert t.X.tolist() == [[1.5, -2.0], [3.0, 0.4]]
    assert t.class_names == ["x", "y"]


def test_comma_inside_a_semicolon_file_is_part_of_a_label(write):
    t = read(write("a;b;class\n1;2;x,1\n3;4;y,2\n"))
    assert t.class_names == ["x,1", "y,2"]


def test_quoted_cells(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text(
        'a,"b, in mm","the ""class"""\n"1",2,"x, y"\n3," 4 ","multi\nline"\n5,6,x\n7,oops,y\n'
    )
    with pytest.raises(DataError, match=r"line 6, column 'b, in mm' \(index 1\): 'oops'"):
        read_csv(path)  # the record over lines 3-4 counts as two lines
    path.write_text(path.read_text().replace("oops", "8"))
    t = read(path)
    assert t.feature_names == ["a", "b, in mm"]
    assert t.X.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert t.class_names == ["multi\nline", "x", "x, y", "y"]
    assert t.labels.tolist() == [2, 0, 1, 3]


def test_quoted_target_name(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('"a";"the class"\n"1.5";"p"\n"2";"q"\n')
    t = read(path, target="the class")
    assert t.X.tolist() == [[1.5], [2.0]] and t.class_names == ["p", "q"]


def test_first_rows_longer_than_the_prefix_read_for_them(tmp_path):
    # the first records are parsed from the first 64 KiB when that holds them
    path = tmp_path / "long.csv"
    long_name = "n" * 70_000
    path.write_text(f'"{long_name}",b\n1,x\n2,y\n')
    t = read(path)
    assert t.feature_names == [long_name] and t.X.tolist() == [[1], [2]]
    wide = 5_000  # rows of about 100,000 characters, no quotes
    rows = [",".join(f"{i + j / 7!r}" for j in range(wide)) + f",{i}" for i in range(3)]
    path.write_text("\n".join(rows) + "\n")
    t = read(path)
    assert t.X.shape == (3, wide) and t.X[2, 3] == 2 + 3 / 7


def test_byte_order_mark_crlf_spaces_and_trailing_blank_lines(write):
    path = write("\ufeffa , b ,class\r\n 1 ,2\t, x \r\n3,4,y\r\n\r\n  \n\n")
    t = read(path)
    assert t.feature_names == ["a", "b"]  # the BOM is not part of the first name
    assert t.X.tolist() == [[1, 2], [3, 4]]
    assert t.class_names == ["x", "y"]


def test_python_float_syntax_is_accepted_where_numpy_refuses_it(write):
    # 1_000 is a float to Python but not to NumPy: the block goes the careful way
    t = read(write("a,b,c\n1_000,2,x\n3,4,y\n5,6,x\n7,8,y\n9,10,x\n"))
    assert t.X[:, 0].tolist() == [1000, 3, 5, 7, 9]


def test_both_ways_give_the_same_table(tmp_path, monkeypatch):
    monkeypatch.setattr(_rows, "CHUNK_ROWS", 7)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4)) * 10.0 ** rng.integers(-5, 5, size=(50, 4))
    y = rng.choice(["b", "a", "c"], size=50)
    text = "p,q,r,s,t\n" + "".join(
        ",".join(repr(float(v)) for v in row) + f",{label}\n"
        for row, label in zip(X, y, strict=True)
    )
    plain, quoted = tmp_path / "plain.csv", tmp_path / "quoted.csv"
    plain.write_text(text)
    quoted.write_text(quote_first_cell(text))
    a, b = read(plain), read(quoted)
    assert np.array_equal(a.X, X) and np.array_equal(b.X, X)
    assert a.class_names == b.class_names == ["a", "b", "c"]
    assert np.array_equal(a.labels, b.labels)
    assert [a.class_names[i] for i in a.labels] == y.tolist()


def test_a_plain_file_is_read_without_the_csv_module(tmp_path, monkeypatch):
    """The fast way: a clean file without quotes never goes row by row (it would be slow)."""

    def refuse(*args, **kwargs):
        raise AssertionError("went the careful way")

    monkeypatch.setattr(_rows._Rows, "add", refuse)
    monkeypatch.setattr(_csv, "_read_quoted", refuse)
    path = tmp_path / "plain.csv"
    rows = "".join(f"{i},{i * 0.5},{i % 3}\r\n" for i in range(5000))
    path.write_bytes(("a,b,y\r\n" + rows).encode())  # Windows line ends too
    t = read(path)
    assert t.X.shape == (5000, 2) and t.X[4999].tolist() == [4999, 2499.5]
    assert t.class_names == ["0", "1", "2"]


def test_only_the_block_numpy_refuses_goes_row_by_row(tmp_path, monkeypatch):
    monkeypatch.setattr(_rows, "CHUNK_ROWS", 100)
    added = []
    careful_add = _rows._Rows.add
    monkeypatch.setattr(
        _rows._Rows,
        "add",
        lambda self, line, row: added.append(line) or careful_add(self, line, row),
    )
    path = tmp_path / "plain.csv"
    rows = [f"{i},{i % 3}\n" for i in range(1000)]
    rows[250] = "1_000,1\n"  # a float to Python, not to NumPy
    path.write_text("a,y\n" + "".join(rows))
    t = read(path)
    assert added == list(range(202, 302))  # lines 202-301 hold rows 200-299
    assert t.X[250, 0] == 1000 and t.X[999, 0] == 999


def test_wine_csv_equals_sklearn():
    from sklearn.datasets import load_wine

    wine = load_wine()
    t = read(ROOT / "data" / "wine.csv", target="cultivar")
    assert np.array_equal(t.X, wine.data)  # exactly: values were written with repr
    assert np.array_equal(t.labels, wine.target)
    assert t.class_names == [str(n) for n in wine.target_names]
    assert t.feature_names == list(wine.feature_names)


# ----------------------------------------------------------------------------- CSV: errors


def test_missing_file_and_folder(tmp_path):
    assert "no such file" in error(read_csv, tmp_path / "nope.csv")
    assert "is a folder" in error(read_csv, tmp_path)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,b,class\n1,2,x\n3,4,caf\u00e9\n".encode("latin-1"))
    message = error(read_csv, path)
    assert "line 3" in message and "not UTF-8" in message and "0xe9" in message


@pytest.mark.parametrize("text", ["", "\n\n", "\ufeff", "  \n"])
def test_empty_file(tmp_path, text):
    path = tmp_path / "empty.csv"
    path.write_text(text)
    assert "is empty" in error(read_csv, path)


# (text, keyword arguments, fragments the message must hold)
FILE_ERRORS = {
    "header only": ("a,b,class\n", {}, ["no data rows"]),
    "header only, blank lines after": ("a,b,class\n\n\n", {}, ["no data rows"]),
    "header only, forced": ("1,2,3\n", {"header": True}, ["no data rows"]),
    "non-numeric feature": (
        "a,b,class\n1,2,x\n3,4,y\n5,oops,x\n",
        {},
        ["line 4, column 'b' (index 1): 'oops' is not a number", "int or float"],
    ),
    "non-numeric feature, no header": (
        "1,2,x\n3,4,y\n5,6,x\n7,8,y\n9,1 2,x\n",
        {},
        ["line 5, column 'x2' (index 1): '1 2' is not a number"],
    ),
    "empty feature": (
        "a,b,class\n1,2,x\n3,4,y\n5,,x\n",
        {},
        ["line 4, column 'b' (index 1): empty cell", "missing value"],
    ),
    "spaces for a feature": (
        "a,b,class\n1,2,x\n3,4,y\n  ,6,x\n",
        {},
        ["line 4, column 'a' (index 0): empty cell"],
    ),
    "empty target": (
        "a,b,class\n1,2,x\n3,4,y\n5,6,\n",
        {},
        ["line 4, target column 'class' (index 2): empty cell", "label"],
    ),
    "empty target, no header": (
        "1,2,x\n3,4,y\n5,6, \n",
        {},
        ["line 3, target column 2: empty cell"],
    ),
    "nan": ("a,b,class\n1,2,x\n3,nan,y\n", {}, ["line 3, column 'b' (index 1): 'nan'", "finite"]),
    "NaN": ("a,b,class\n1,2,x\n3,4,y\n5,6,x\nNaN,4,y\n", {}, ["line 5, column 'a'", "'NaN'"]),
    "inf": ("a,b,class\n1,inf,x\n3,4,y\n", {}, ["line 2, column 'b' (index 1): 'inf'", "finite"]),
    "-Infinity": ("a,b,class\n1,2,x\n-Infinity,4,y\n", {}, ["line 3", "'-Infinity'"]),
    "overflow": ("a,b,class\n1,2,x\n3,1e999,y\n", {}, ["line 3", "'1e999'", "reads as inf"]),
    "too few cells": (
        "a,b,class\n1,2,x\n3,4,y\n5,x\n7,8,y\n",
        {},
        ["line 4 has 2 cells, expected 3"],
    ),
    "too many cells": ("a,b,class\n1,2,x\n3,4,5,y\n", {}, ["line 3 has 4 cells, expected 3"]),
    "blank line ending a block": (
        "a,b,class\n1,2,x\n\n3,4,y\n",
        {},
        ["line 3 is blank", "only at the end"],
    ),
    "blank line starting a block": (
        "a,b,class\n1,2,x\n3,4,y\n\n5,6,x\n",
        {},
        ["line 4 is blank"],
    ),
    "blank first line": ("\n1,2,x\n3,4,y\n", {}, ["line 1 is blank"]),
    "first problem in file order": (
        "a,b,class\n1,2,x\n3,4,y\n5,6\n7,oops,x\n",
        {},
        ["line 4 has 2 cells"],
    ),
    "first problem in file order, same block": (
        "a,b,class\n1,2,x\n3,4,y\n5,oops,x\n7,8\n",
        {},
        ["line 4, column 'b' (index 1): 'oops'"],
    ),
    "feature before the empty label of its row": (
        "a,b,class\n1,2,x\n3,4,y\n5,?,\n",
        {},
        ["line 4, column 'b' (index 1): '?'"],
    ),
    "unknown target name": (
        "a,b,class\n1,2,x\n3,4,y\n",
        {"target": "clas"},
        ["target 'clas' is not a column", "'a', 'b', 'class'", "did you mean 'class'?"],
    ),
    "unknown target name, nothing close": (
        "a,b,class\n1,2,x\n3,4,y\n",
        {"target": "zzz"},
        ["target 'zzz' is not a column", "'a', 'b', 'class'"],
    ),
    "many columns listed briefly": (
        ",".join(f"c{i}" for i in range(20)) + "\n" + ",".join(["1"] * 19) + ",x\n",
        {"target": "nope"},
        ["'c0', 'c1',", "... (20 in all)"],
    ),
    "target index too big": (
        "a,b,class\n1,2,x\n3,4,y\n",
        {"target": 3},
        ["target index 3 is out of range", "3 columns", "0..2"],
    ),
    "target index too small": (
        "a,b,class\n1,2,x\n3,4,y\n",
        {"target": -4},
        ["target index -4 is out of range", "-3..-1"],
    ),
    "target name without header": (
        "1,2,x\n3,4,y\n",
        {"target": "class"},
        ["target 'class' is a column name, but the file has no header", "index"],
    ),
    "target of the wrong type": ("a,b\n1,x\n2,y\n", {"target": 1.0}, ["target must be"]),
    "target True": ("a,b\n1,x\n2,y\n", {"target": True}, ["target must be"]),
    "unknown feature name": (
        "a,b,class\n1,2,x\n3,4,y\n",
        {"features": ["a", "bb"]},
        ["feature 'bb' is not a column", "did you mean 'b'?"],
    ),
    "feature index out of range": (
        "a,b,class\n1,2,x\n3,4,y\n",
        {"features": [0, 5]},
        ["feature index 5 is out of range"],
    ),
    "feature is the target, by name": (
        "a,b,class\n1,2,x\n3,4,y\n",
        {"features": ["a", "class"]},
        ["feature 'class' is the target column 'class' (index 2)"],
    ),
    "feature is the target, by index": (
        "a,b,class\n1,2,x\n3,4,y\n",
        {"features": [-1]},
        ["feature -1 is the target column 'class' (index 2)"],
    ),
    "feature twice": (
        "a,b,class\n1,2,x\n3,4,y\n",
        {"features": ["a", 0]},
        ["column 'a' (index 0) twice"],
    ),
    "no features": ("a,b,class\n1,2,x\n3,4,y\n", {"features": []}, ["no feature columns"]),
    "features a string": ("a,b,class\n1,2,x\n3,4,y\n", {"features": "a"}, ["must be a list"]),
    "one class": (
        "a,b,class\n1,2,x\n3,4, x\n",
        {},
        ["target column 'class' (index 2) holds only one class 'x'", "at least 2"],
    ),
    "one class, numbers": ("1,2,1\n3,4,1.0\n", {}, ["holds only one class '1'"]),
    "one row": ("1,2,x\n", {}, ["holds only one class 'x'"]),
    "non-finite label": (
        "a,b,class\n1,2,1\n3,4,nan\n",
        {},
        ["line 3, target column 'class' (index 2): label 'nan' is not a finite number"],
    ),
    "single column": ("a\n1\n2\n", {}, ["line 1 has a single column"]),
    "unnamed column": (
        ",a,class\n0,1.5,x\n1,2.5,y\n",
        {},
        ["column index 0 has no name", "data.features"],
    ),
    "ambiguous name": (
        "a,a,class\n1,2,x\n3,4,y\n",
        {"features": ["a"]},
        ["feature 'a' is ambiguous", "0, 1"],
    ),
    "decimal comma": (
        "a;b;class\n1;2;x\n1,5;2;y\n",
        {},
        ["line 3, column 'a' (index 0): '1,5' is not a number", "decimal comma"],
    ),
    "long value cut short": (
        "a,b,class\n1,2,x\n3," + "z" * 100 + ",y\n",
        {},
        ["line 3, column 'b' (index 1): 'zzzz", "(100 characters)"],
    ),
    "bad header argument": ("a,b\n1,x\n2,y\n", {"header": "yes"}, ["header must be"]),
}


@pytest.mark.parametrize("case", FILE_ERRORS)
def test_file_errors(write, case):
    text, kwargs, fragments = FILE_ERRORS[case]
    message = error(read_csv, write(text), **kwargs)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    if case == "long value cut short":
        assert "z" * 60 not in message


def test_quote_errors(tmp_path):
    path = tmp_path / "quotes.csv"
    path.write_text('a,b,class\n1,2,x\n3,"4,y\n5,6,x\n')
    message = error(read_csv, path)
    assert "line 3, column index 1: cannot be parsed as CSV" in message and "quotes" in message
    path.write_text('a,b,class\n1,2,x\n"3"4,5,y\n')
    assert "line 3, column index 0: cannot be parsed as CSV" in error(read_csv, path)
    path.write_text('a,b,class\n1,"2\n",x\n4,5,y,z\n')
    message = error(read_csv, path)
    assert "line 4 has 4 cells" in message  # the record over lines 2-3 counts as two lines
    path.write_text('a,b,class\n1,"2,x\n3",4,y\n5,6,z\n')
    assert "a quote not closed?" in error(read_csv, path)


def test_message_with_a_newline_in_a_value_stays_on_one_line(tmp_path):
    path = tmp_path / "nl.csv"
    path.write_text('a,b,class\n1,2,x\n3,"four\nfive",y\n')
    message = error(read_csv, path)
    assert "'four\\nfive'" in message


# ----------------------------------------------------------------------------- npz


def savez(tmp_path: Path, name: str = "data.npz", **arrays) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


X4 = np.arange(12.0).reshape(4, 3)


def read_z(path) -> Table:
    table = read_npz(path)
    check_table(table)
    return table


def test_npz_strings_and_feature_names(tmp_path):
    path = savez(
        tmp_path, X=X4, y=np.array(["b", "a", "b", "c"]), feature_names=np.array(["p", "q", "r"])
    )
    t = read_z(path)
    assert np.array_equal(t.X, X4)
    assert t.class_names == ["a", "b", "c"] and t.labels.tolist() == [1, 0, 1, 2]
    assert t.feature_names == ["p", "q", "r"]


def test_npz_int_labels_and_int_features(tmp_path):
    t = read_z(savez(tmp_path, X=np.arange(8, dtype=np.int32).reshape(4, 2), y=[10, 2, 2, 10]))
    assert t.X.dtype == np.float64 and t.X.tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert t.class_names == ["2", "10"] and t.labels.tolist() == [1, 0, 0, 1]
    assert t.feature_names == ["x1", "x2"]


def test_npz_whole_float_labels(tmp_path):
    t = read_z(savez(tmp_path, X=X4, y=np.array([1.0, -3.0, 1.0, 2.0])))
    assert t.class_names == ["-3", "1", "2"] and t.labels.tolist() == [1, 0, 1, 2]


def test_npz_numeric_string_labels_sort_numerically(tmp_path):
    np.savez_compressed(tmp_path / "c.npz", X=X4.T.copy().T, y=np.array(["10", "9", "1.0", "9"]))
    t = read_z(tmp_path / "c.npz")
    assert t.class_names == ["1", "9", "10"] and t.labels.tolist() == [2, 1, 0, 1]


def test_npz_fortran_order_becomes_c_contiguous(tmp_path):
    t = read_z(savez(tmp_path, X=np.asfortranarray(X4), y=[0, 1, 0, 1]))
    assert t.X.flags.c_contiguous and np.array_equal(t.X, X4)


def test_npz_missing_file_and_folder(tmp_path):
    assert "no such file" in error(read_npz, tmp_path / "nope.npz")
    assert "is a folder" in error(read_npz, tmp_path)


def test_npz_not_an_archive(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_text("X,y\n1,2\n")
    assert "is not an .npz archive" in error(read_npz, junk)
    np.save(tmp_path / "one.npy", X4)
    assert "is a .npy file" in error(read_npz, tmp_path / "one.npy")


def test_npz_damaged(tmp_path):
    path = tmp_path / "damaged.npz"
    np.savez_compressed(path, X=np.random.default_rng(0).normal(size=(100, 50)), y=np.zeros(100))
    raw = bytearray(path.read_bytes())
    raw[200:400] = bytes(200)  # inside X's compressed data
    path.write_bytes(bytes(raw))
    assert "cannot be read" in error(read_npz, path)


def test_npz_member_that_is_not_npy(tmp_path):
    path = tmp_path / "zip.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("X", b"not an array")
        z.writestr("y.npy", b"")
    assert "'X' is not a NumPy array" in error(read_npz, path)


# name -> (arrays, fragments the message must hold)
NPZ_ERRORS = {
    "no X": ({"y": [0, 1], "data": X4}, ["has no array 'X'", "'y', 'data'"]),
    "no y": ({"X": X4, "labels": [0, 1, 0, 1]}, ["has no array 'y'", "'X', 'labels'"]),
    "nothing": ({}, ["has no array 'X' and 'y'", "no arrays"]),
    "X 1-D": ({"X": X4.ravel(), "y": [0, 1] * 6}, ["'X' has shape (12,)", "2-D"]),
    "X 3-D": ({"X": X4.reshape(2, 2, 3), "y": [0, 1]}, ["'X' has shape (2, 2, 3)", "2-D"]),
    "X empty": ({"X": np.zeros((0, 3)), "y": np.zeros(0)}, ["'X' has shape (0, 3)"]),
    "X strings": ({"X": X4.astype(str), "y": [0, 1, 0, 1]}, ["'X' has dtype <U", "numbers"]),
    "X complex": ({"X": X4 + 1j, "y": [0, 1, 0, 1]}, ["'X' has dtype complex128"]),
    "X NaN": (
        {"X": np.where(X4 == 5, np.nan, X4), "y": [0, 1, 0, 1]},
        ["X[1, 2] is nan", "finite"],
    ),
    "X inf": ({"X": np.where(X4 == 9, -np.inf, X4), "y": [0, 1, 0, 1]}, ["X[3, 0] is -inf"]),
    "X object": (
        {"X": np.array([[1, "a"], [2, None]], dtype=object), "y": [0, 1]},
        ["'X' is an object array", "refused"],
    ),
    "y object": (
        {"X": X4, "y": np.array([0, "a", None, 1], dtype=object)},
        ["'y' is an object array", "refused"],
    ),
    "y 2-D": ({"X": X4, "y": np.zeros((4, 1))}, ["'y' has shape (4, 1)", "1-D"]),
    "length mismatch": ({"X": X4, "y": [0, 1, 0]}, ["'y' holds 3 labels but 'X' has 4 rows"]),
    "y fraction": ({"X": X4, "y": [0.0, 1.0, 0.5, 1.0]}, ["y[2] is 0.5", "whole numbers"]),
    "y NaN": ({"X": X4, "y": [0.0, np.nan, 0.0, 1.0]}, ["y[1] is nan"]),
    "y empty string": ({"X": X4, "y": ["a", "b", " ", "a"]}, ["y[2] is an empty string"]),
    "y nan string": ({"X": X4, "y": ["1", "2", "nan", "1"]}, ["y[2]: label 'nan'", "finite"]),
    "y complex": ({"X": X4, "y": np.ones(4) * 1j}, ["'y' has dtype complex128"]),
    "one class": ({"X": X4, "y": ["a"] * 4}, ["'y' holds only one class 'a'"]),
    "feature_names wrong length": (
        {"X": X4, "y": [0, 1, 0, 1], "feature_names": np.array(["p", "q"])},
        ["'feature_names' has shape (2,)", "expected 3 strings"],
    ),
    "feature_names numbers": (
        {"X": X4, "y": [0, 1, 0, 1], "feature_names": np.arange(3)},
        ["'feature_names'", "expected 3 strings"],
    ),
}


@pytest.mark.parametrize("case", NPZ_ERRORS)
def test_npz_errors(tmp_path, case):
    arrays, fragments = NPZ_ERRORS[case]
    message = error(read_npz, savez(tmp_path, **arrays))
    for fragment in fragments:
        assert fragment in message, (fragment, message)
