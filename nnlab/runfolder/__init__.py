"""Run folders: creating and reading them (runs), the records read back (records), whether a
``running`` folder is alive (liveness), provenance and environment, the runs index and the
``nnlab runs`` query."""
