"""Landing objects in, parsed lines out: the landing layout, the parsers, and AWS ingestion."""
