"""Experiment configs: the options every kind declares (options), dotted overrides and keys
(overrides), loading and resolving a config file against its kind (resolve), and the JSON
Schema and README reference generated from the options (schema).

Nothing is imported here: options and overrides sit below the model kinds, resolve and
schema above them."""
