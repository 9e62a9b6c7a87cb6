"""Custom checkov checks for what checkov lacks (loaded with --external-checks-dir)."""
