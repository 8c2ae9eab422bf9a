"""The one YAML reader: configs, sweep files, ``-s`` values, and the config.yaml and sweep.yaml
that nnlab reads back all go through :func:`parse_yaml` (docs/configs.md, 'YAML input').

PyYAML's safe loader takes whatever it is given: its composer recurses once per nesting
level (a few thousand ``[`` end in RecursionError), aliases share nodes that multiply when
anything walks the data ("billion laughs"), a file is read to its end (``/dev/zero`` has
none), YAML 1.1 reads ``1:30`` as the base-60 number 90, and of two equal keys the last
silently wins. This reader bounds the size, the nesting depth and what aliases may add,
reads ``1:30`` as the text it looks like, refuses duplicate keys and tags that construct
objects, and says so in one :class:`~nnlab.errors.ConfigError` naming the source and line.
Error messages show values read from YAML through :func:`shown`, never unbounded.
"""

from __future__ import annotations

import os
import re
import reprlib
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from nnlab.errors import ConfigError

MAX_BYTES = 4 * 2**20  # far above any config or sweep record, far below trouble
MAX_DEPTH = 32  # nnlab's files nest 6 levels at most (a sweep record's list choices)
MAX_ALIAS_VALUES = 100_000  # values that aliases may add when they are expanded
SHOWN_CHARS = 80  # of a value echoed in an error message

INT_TAG, FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
MERGE_TAG = "tag:yaml.org,2002:merge"
# YAML 1.1's int and float patterns without the base-60 forms (1:30 is read as a string).
INT = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$")
FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
# YAML 1.1 reads `1e-3` (no dot) as a string; read it as the float everyone means.
EXPONENT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


def clip(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_REPR = reprlib.Repr()
_REPR.maxlevel = 6
_REPR.maxstring = _REPR.maxother = 2 * SHOWN_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = SHOWN_CHARS


def shown(value: Any) -> str:
    """A value as an error message shows it: its repr, cut to 80 characters. reprlib looks
    at no more than it shows, so even a huge value costs nothing to show."""
    return clip(_REPR.repr(value))


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with nnlab's bounds and YAML 1.2's reading of numbers; ``where``
    names the source in its errors."""

    def __init__(self, text: str, where: str):
        super().__init__(text)
        self.where, self.depth, self.first_alias = where, 0, None

    def refuse(self, problem: str, mark: yaml.Mark | None = None) -> ConfigError:
        at = f", line {mark.line + 1}" if mark else ""
        return ConfigError(f"{self.where}{at}: {problem}")

    def compose_node(self, parent: Any, index: Any) -> yaml.Node:
        """Compose as PyYAML does, counting the depth: its composer recurses per level."""
        if self.check_event(yaml.AliasEvent):
            self.first_alias = self.first_alias or self.peek_event().start_mark
            return super().compose_node(parent, index)
        if self.depth >= MAX_DEPTH:
            raise self.refuse(
                f"values nested deeper than {MAX_DEPTH} levels (the limit)",
                self.peek_event().start_mark,
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        sizes: dict[int, int] = {}
        added = _expanded_size(node, sizes, set(), self) - len(sizes)
        if added > MAX_ALIAS_VALUES:
            raise self.refuse(
                f"aliases expand to {added:,} more values, above the limit of "
                f"{MAX_ALIAS_VALUES:,}; write the values out or use fewer aliases",
                self.first_alias,
            )
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """Refuse a key given twice in one mapping (YAML keeps the last, silently); keys a
        merge (``<<: *base``) brings in may be overridden, as YAML means."""
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    earlier = first.setdefault(key, key_node)
                except TypeError:  # an unhashable key: PyYAML's own error names it
                    continue
                if earlier is not key_node:
                    raise self.refuse(
                        f"duplicate key {shown(key)} (first at line {earlier.start_mark.line + 1})"
                        "; a mapping holds each key once",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_: set[int], loader) -> int:
    """How many values ``node`` holds once every alias is expanded; ``sizes`` memoises each
    node (so a shared node is walked once, and ``len(sizes)`` is the values as written)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise loader.refuse("an alias refers to a value that contains it", node.start_mark)
    open_.add(key)
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    sizes[key] = 1 + sum(_expanded_size(c, sizes, open_, loader) for c in children)
    open_.discard(key)
    return sizes[key]


def _refuse_tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    raise ConfigError(
        f"YAML tag {clip(repr(tag))} is not allowed (line {node.start_mark.line + 1}): "
        "nnlab reads plain YAML only, no tags that construct objects"
    )


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (INT_TAG, FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(INT_TAG, INT, list("-+0123456789"))
_Loader.add_implicit_resolver(FLOAT_TAG, FLOAT, list("-+0123456789."))
_Loader.add_implicit_resolver(FLOAT_TAG, EXPONENT, list("-+0123456789."))
_Loader.add_multi_constructor("", _refuse_tag)  # every tag SafeLoader does not know


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text within nnlab's bounds; ``where`` names the source in error messages."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{where}: {len(text):,} characters, above the limit of {MAX_BYTES:,}")
    try:
        return _load(text, where)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = clip(exc.problem or exc.context or "cannot parse", 2 * SHOWN_CHARS)
        raise ConfigError(f"{where}: malformed YAML{at}: {problem}") from None
    except yaml.YAMLError as exc:  # e.g. a control character: its message spans lines
        problem = clip(" ".join(str(exc).split()), 2 * SHOWN_CHARS)
        raise ConfigError(f"{where}: malformed YAML: {problem}") from None


def _load(text: str, where: str) -> Any:
    loader = _Loader(text, where)  # checks the characters: may raise a YAMLError
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml_file(path: str | Path, what: str = "config file", pipes: bool = True) -> Any:
    """Read and parse a YAML file, turning every file problem into a one-line ConfigError
    that calls the file ``what``. Only regular files (and pipes, with ``pipes``: a config
    given as ``<(...)``) are read, and no more than MAX_BYTES of them: a device such as
    /dev/zero never ends. Files nnlab reads back from its own folders pass ``pipes=False``:
    a FIFO there would block the reader forever."""
    name = f"{what} {str(path)!r}"  # a path is bounded (PATH_MAX) and a user needs all of it
    try:
        data = read_file(path, name, MAX_BYTES, pipes=pipes)
    except FileNotFoundError:
        raise ConfigError(f"{name} not found") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{name} is not UTF-8 text") from None
    return parse_yaml(text, str(path))


def not_a_file(mode: int) -> str | None:
    """What a path of this mode is when it is not a regular file (``"a named pipe (FIFO)"``),
    None for a regular file: the one check of what nnlab may read whole."""
    if stat.S_ISREG(mode):
        return None
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((what for test, what in kinds if test(mode)), "not a regular file")


def open_regular(path: str | Path, refuse: Callable[[str], Exception]) -> BinaryIO:
    """``path`` opened for reading in binary, when it is a regular file (symbolic links
    followed); else ``refuse(problem)`` is raised, ``problem`` a phrase such as "no such file"
    or "is a named pipe (FIFO), not a regular file" (a FIFO would wait for a writer forever, a
    device such as /dev/zero never ends, a folder is not data). Checked as
    :func:`_open_checked` does."""

    def check(st: os.stat_result) -> None:
        kind = not_a_file(st.st_mode)
        if kind is not None:
            raise refuse(f"is {kind}, not a regular file; nnlab reads data from regular files")

    try:
        return _open_checked(path, check)
    except FileNotFoundError:
        raise refuse("no such file") from None
    except OSError as exc:
        raise refuse(f"cannot be read: {exc.strerror or exc}") from None


def _open_checked(path: str | Path, check: Callable[[os.stat_result], None]) -> BinaryIO:
    """``path`` opened for reading in binary once ``check`` (which raises) passed on its
    status before it is opened, and again on the open file — opened without blocking, so a
    FIFO swapped in between never hangs."""
    check(os.stat(path))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        check(os.fstat(fd))  # the file opened is the one checked
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_file(
    path: str | Path,
    name: str,
    limit: int,
    *,
    pipes: bool = False,
    error: type[Exception] = ConfigError,
) -> bytes:
    """The bytes of the file at ``path`` (called ``name`` in messages), read only when it is
    a regular file (or, with ``pipes``, a pipe) of at most ``limit`` bytes; ``error`` (one
    line) otherwise. Without ``pipes`` the file is checked before it is opened and opened
    without blocking, so a FIFO put in its place never hangs the reader."""
    with open_file(path, name, limit, pipes=pipes, error=error) as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise error(f"{name} cannot be read: {exc.strerror}") from None
    if len(data) > limit:
        raise error(f"{name} holds more than {_mib(limit)} MiB, the limit")
    return data


def open_file(
    path: str | Path,
    name: str,
    limit: int,
    *,
    pipes: bool = False,
    error: type[Exception] = ConfigError,
) -> BinaryIO:
    """``path`` opened for reading in binary, after the checks of :func:`read_file` (the
    caller bounds what it reads of a pipe); FileNotFoundError passes through for callers
    to whom a missing file means something."""
    try:
        if not pipes:
            return _open_checked(
                path, lambda st: check_file(st, name, limit, pipes=False, error=error)
            )
        f = open(path, "rb")  # noqa: SIM115 (returned to the caller's with)
        try:
            check_file(os.fstat(f.fileno()), name, limit, pipes=True, error=error)
        except BaseException:
            f.close()
            raise
        return f
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise error(f"{name} is a folder, not a file") from None
    except OSError as exc:
        raise error(f"{name} cannot be read: {exc.strerror}") from None


def check_file(
    st: os.stat_result,
    name: str,
    limit: int = MAX_BYTES,
    *,
    pipes: bool = False,
    error: type[Exception] = ConfigError,
) -> None:
    """Refuse what is not a regular file (nor a pipe, with ``pipes``), and a file over
    ``limit`` bytes, before reading it."""
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{name} is a folder, not a file")
    if stat.S_ISFIFO(st.st_mode) and not pipes:
        raise error(f"{name} is a named pipe (FIFO), not a regular file: nnlab reads files")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        raise error(f"{name} is not a regular file (a device or socket): nnlab reads files")
    if st.st_size > limit:
        raise error(f"{name} is {_mib(st.st_size)} MiB, above the limit of {_mib(limit)} MiB")


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f}".removesuffix(".0")
