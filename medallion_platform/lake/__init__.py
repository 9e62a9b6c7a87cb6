"""The lake: Delta tables by zone (Arrow in, Arrow out), storage, SQL text and file writing; no engine."""
