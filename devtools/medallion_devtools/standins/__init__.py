"""Stand-ins of other vendors' APIs, for tests and local runs. They import nothing of `medallion_platform`."""
