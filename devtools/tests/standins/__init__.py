"""Tests of the stand-ins of other vendors' APIs."""
