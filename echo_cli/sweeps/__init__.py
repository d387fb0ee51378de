"""Many runs of one config: grid.py parses `--grid KEY=V1,V2` into points, sweep.py owns the
sweep directory (its definition, lock, runs and resumption) and its summaries, executors.py
runs the points on long-lived local worker processes or on Ray, and worker.py is such a worker:
it imports Keras once and trains run after run, each exactly as `echo-cli train` would.
"""
