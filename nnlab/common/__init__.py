"""What every layer shares and that knows nothing of configs, models or folders: the YAML
reader and the regular-file gates (yamlread), atomic writes (files), metric names (metrics),
the statistics over seeds (stats) and signals held off while a write must finish (signals)."""
