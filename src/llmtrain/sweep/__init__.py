"""Hyperparameter sweeps with Optuna: a spec (spec.py), the study and its trials (study.py),
where parallel workers run (resources.py), the results (report.py) and the command
(runner.py). Each trial is a normal run directory trained by the one `Trainer`."""
