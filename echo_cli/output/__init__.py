"""Everything echo-cli shows, made from plain numbers and dicts: the console's rich pieces
(report.py: history, held-out line, progress bars), tables of many runs for the console and
for Markdown (tables.py, with fitted.py keeping every figure whole at any width), and the
plots as PNG bytes (plots.py). Nothing here reads a file, trains or imports Keras, and nothing
here imports the rest of echo-cli: the layers above hand it data.
"""
