"""Looking at finished runs. trained.py loads a run's model to predict with it and checks the
model against its config; stream.py feeds it one number at a time; probing.py reads its state
(how far back it remembers); compare.py puts runs side by side for `results`, `compare` and
`memory-table`; bench.py and scaling.py measure speed and memory in fresh processes. Each
reads run directories through store/ and asks the run's task what its numbers mean.
"""
