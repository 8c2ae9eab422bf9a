"""Model kinds: the registry keyed by ``model.kind`` (docs/models.md, 'Adding a model kind').

mlp (the NumPy multilayer perceptron) and dcn (the PyTorch convolutional network) are built
in. Other packages add kinds through the ``nnlab.kinds`` entry-point group, a notebook or a
test with :func:`register`. Looking a kind up imports only its schema; its trainer (and
libraries such as PyTorch) load when a run is built.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from nnlab.errors import ConfigError
from nnlab.models import bounds
from nnlab.models.base import Kind, Trainer
from nnlab.models.training.callbacks import Callback, Hooks, StopRun

__all__ = [
    "Callback",
    "Hooks",
    "Kind",
    "StopRun",
    "Trainer",
    "build",
    "check_memory",
    "get_kind",
    "kind_of",
    "kinds",
    "register",
]

ENTRY_POINTS = "nnlab.kinds"
_KINDS: dict[str, Kind] = {}
_PLUGINS_LOADED = False
_BROKEN: dict[str, str] = {}  # plug-in kinds that failed to load: name -> why


def _builtin() -> None:
    if not _KINDS:
        from nnlab.models.dcn import KIND as DCN
        from nnlab.models.mlp import KIND as MLP

        _KINDS.update({MLP.name: MLP, DCN.name: DCN})


def register(kind: Kind) -> None:
    """Add a model kind (or replace one of the same name)."""
    _builtin()
    _KINDS[kind.name] = kind


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for entry in metadata.entry_points(group=ENTRY_POINTS):
        try:
            kind = entry.load()
        except Exception as exc:  # a broken plug-in must not break the other kinds
            _BROKEN[entry.name] = f"entry point {entry.value} cannot be loaded: {exc}"
            continue
        _KINDS.setdefault(kind.name, kind)


def kinds() -> dict[str, Kind]:
    """Every known kind by name: built in, registered, and from entry points."""
    _builtin()
    _load_plugins()
    return dict(_KINDS)


def check_loadable(name: str) -> None:
    """ConfigError saying why, when ``name`` is a plug-in kind whose entry point failed."""
    _load_plugins()
    if name in _BROKEN:
        raise ConfigError(f"model.kind {name!r}: {' '.join(_BROKEN[name].split())}")


def get_kind(name: str) -> Kind:
    """The kind called ``name``; ConfigError listing the known kinds otherwise."""
    _builtin()
    if name not in _KINDS:
        _load_plugins()
    check_loadable(name)
    if name not in _KINDS:
        raise ConfigError(f"model.kind must be one of {', '.join(kinds())}; got {name!r}")
    return _KINDS[name]


def kind_of(cfg: dict[str, Any]) -> Kind:
    """The kind of a resolved config."""
    return get_kind(cfg["model"]["kind"])


def trainer_class(cfg: dict[str, Any]) -> type[Trainer]:
    return kind_of(cfg).trainer_class()


def check_memory(cfg: dict[str, Any], cache: dict[str, Any] | None = None) -> None:
    """Refuse a resolved config whose kind estimates more memory than the limit
    (:func:`nnlab.models.bounds.check_needs`). ``cache`` is shared by a sweep's jobs of one
    kind (file headers read once)."""
    cache = {} if cache is None else cache
    bounds.check_needs(cfg, kind_of(cfg).memory(cfg, cache), cache)


def build(cfg: dict[str, Any]) -> Trainer:
    """The trainer for a resolved config: first the memory it would need is checked against
    the limit (:mod:`nnlab.models.bounds`), then it loads and checks the data (NnlabError
    if bad)."""
    check_memory(cfg)
    return trainer_class(cfg)(cfg)
