"""Medallion AWS infrastructure (Pulumi). Importing this package has no side effects."""
