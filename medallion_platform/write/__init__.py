"""The write layer, above the engines and the lake: write specs (`spec.py`), the Delta writer for each
engine (`writers.py`), and `persist()` (`persist.py`: write in one commit, then register in the catalog),
the one route by which the product writes a table."""
