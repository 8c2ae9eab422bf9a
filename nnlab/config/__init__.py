"""Experiment configs: the options every kind declares (options), loading and resolving a
config file with its overrides, and the JSON Schema generated from the options (schema).

Nothing is imported here: the options sit below the model kinds, the resolver above them."""
