"""Figures, rendered with matplotlib's Agg backend to PNG, SVG or PDF: curves and seed bands,
decision boundaries and confusion matrices (plots), and a search's figures (search)."""

FORMATS = ("png", "pdf", "svg")  # what `nnlab plot --format` renders
