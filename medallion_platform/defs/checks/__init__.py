"""Asset checks: the trusted tables' (from their contracts) and the refined tables' (from their declarations)."""
