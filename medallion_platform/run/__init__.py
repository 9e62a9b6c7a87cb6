"""Process runners: in-process materialization, crash recovery, and the Dagster instance the project creates."""
