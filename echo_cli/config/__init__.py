"""The config: its schema, put together from the task and kind registries (schema.py), YAML
read strictly (yamlio.py), dotted overrides and one validation pass (loading.py), the schema
in words and as JSON Schema (keys.py), and the memory a config needs, checked before anything
starts (limits.py). Precedence is defaults < file < --set, then one validation pass; every
problem is a ConfigError of one line. Nothing here imports TensorFlow.
"""
