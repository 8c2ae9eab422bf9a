"""How big a data set is, known without loading it (the memory estimates before a run): from
the config, the catalog, the IDX files' headers or the first line of a user's table."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from nnlab.data.catalog import BUNDLED, CATALOG, GENERATED, GENERATED_FEATURES, IDX


@dataclass(frozen=True)
class Extent:
    """How big a data set is, known without loading it: its examples (before
    ``data.test_size`` is held out), its own test examples (the IDX sets'), one example's
    shape (``(features,)`` of a table, ``(height, width)`` of an image), and the bytes that
    reading the user's file takes beyond the arrays."""

    examples: int
    test: int
    example: tuple[int, ...]
    reading: float = 0

    @property
    def features(self) -> int:
        """An example's values, as the MLP reads it (images flattened)."""
        return math.prod(self.example)


def extent(data_cfg: Mapping[str, Any]) -> Extent:
    """The size of the data set a resolved config's ``data`` section names: from the config
    (generated sets), the catalog (bundled ones), the IDX files' headers (checked on the way:
    DataError naming a bad file; MNIST's size for files not there yet), or the first line /
    .npy headers of the user's file (:func:`~nnlab.data.tables.file_shape`) — never from
    model.layers: a file wider than that says is measured, and refused when it would not fit.
    """
    entry = CATALOG[data_cfg["name"]]
    if entry.source == GENERATED:
        return Extent(data_cfg["n_samples"], 0, (GENERATED_FEATURES,))
    if entry.source == BUNDLED:
        return Extent(entry.size[0], 0, entry.size[1:])
    # The readers below import NumPy, which validating a config (this module's users) must not.
    if entry.source == IDX:
        from nnlab.data.idx import idx_shape

        images = idx_shape(entry.name, data_cfg)
        return Extent(images.train, images.test, (images.height, images.width))
    from nnlab.data.tables import file_shape

    table = file_shape(entry.name, data_cfg["path"], data_cfg.get("features"))
    return Extent(table.rows, 0, (table.features,), table.reading)


def image_extent(data_cfg: Mapping[str, Any]) -> Extent:
    """:func:`extent` of the images the DCN reads (a bundled image set resized)."""
    found = extent(data_cfg)
    size = CATALOG[data_cfg["name"]].image_size
    return found if size is None else replace(found, example=size)
