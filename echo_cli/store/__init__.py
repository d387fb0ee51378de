"""What a run leaves on disk, and what reads it back. rundir.py is the only code that knows a
run directory's file names and its metrics record (metrics.py); claim.py creates and locks a
directory so two runs never share one; files.py writes every file whole or not at all;
provenance.py records the versions and commit that made a run; tracking.py mirrors a run, as
it trains, into TensorBoard event files (tensorboard.py) and MLflow (mlflow_run.py). No Keras
here: a model is saved by a function the trainer passes in (MLflow's Keras flavour saves the
model object it is handed).
"""
