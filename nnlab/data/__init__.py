"""Data sets: generated 2-D sets, scikit-learn's tables, MNIST-format IDX files, and a user's
own CSV or NPZ table — each named once in :mod:`~nnlab.data.catalog`, read as tables for the
MLP (:mod:`~nnlab.data.tabular`) or as images for the DCN (:mod:`~nnlab.data.images`), from
IDX files (:mod:`~nnlab.data.idx`) or the user's file (:mod:`~nnlab.data.tables`)."""
