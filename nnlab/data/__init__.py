"""Data sets: generated 2-D sets, scikit-learn's tables, MNIST-format IDX files, and a user's
own CSV or NPZ table."""
