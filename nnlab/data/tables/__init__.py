"""A user's own data table for the MLP, from a CSV file (:func:`read_csv`) or an ``.npz``
archive (:func:`read_npz`), and its shape without reading it (:func:`file_shape`).

Every problem raises :class:`~nnlab.errors.DataError` with a one-line message that names the
file and, where it applies, the line (1-based, the header counted), the column (name and
index), the bad value and what is allowed.
"""

from nnlab.data.tables._common import Table
from nnlab.data.tables._csv import read_csv
from nnlab.data.tables._npz import read_npz
from nnlab.data.tables._shape import FileShape, file_shape

__all__ = ["FileShape", "Table", "file_shape", "read_csv", "read_npz"]
