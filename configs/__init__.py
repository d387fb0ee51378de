"""The built-in configs: this folder is shipped inside the wheel as the package echo_cli.configs
(pyproject.toml maps it), so `echo-cli train lag1` and `echo-cli configs` work without a clone.
Read it through echo_cli.config.builtin, never by path; it holds no code.
"""
