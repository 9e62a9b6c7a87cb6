"""The write layer: write specs, the Delta writers per engine, and `persist()` (write, then register)."""
