"""What is read back and handed in: re-rendered figures and overlays (results), ``nnlab
compare`` (compare), report.md and report.html (report, explore)."""
