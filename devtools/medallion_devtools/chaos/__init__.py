"""`medallion chaos`, the platform's reliability trials: kill -9 of `materialize` and a rerun, re-delivery, two
writers at once.

`trials.py` runs each trial against an uninterrupted reference run of the same landing objects,
`lake_state.py` reads and compares the lakes, `processes.py` runs `materialize` as bounded child processes,
`chaos.py` sums the figures behind `medallion chaos` (`cli.py`).
"""
