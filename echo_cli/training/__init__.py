"""One run, from a validated config to a finished run directory. experiment.py is the path
every trainer takes (prepare, train, then save and score step by step, and the exit code a
run ends with); loop.py seeds, builds and fits, and turns what happened into a RunResult of
plain numbers; engines.py holds the loops (the tutorial's, and the fast ones on TensorFlow and
JAX); evaluate.py feeds a model the task's held-out and validation sequences; seeds.py,
program.py and vmapped.py train several seeds of a config as one compiled JAX program;
checkpoint.py saves and resumes; warm.py keeps a sweep worker's models and compiled steps
for its later runs of the same shapes; backends.py
picks and imports Keras's backend; signals.py turns Ctrl-C, SIGTERM and SIGHUP into a stop at
a safe point; startup.py holds the start-up tricks, each with what it saves.
"""
