"""The shipped benchmark: `medallion bench` (see `run.py`)."""
