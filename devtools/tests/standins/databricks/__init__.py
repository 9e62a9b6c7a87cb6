"""The Databricks stand-in's own contract, through the real SDK."""
