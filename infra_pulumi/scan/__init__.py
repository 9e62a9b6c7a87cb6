"""Security scan of the Pulumi program: export a Terraform-plan JSON from the mock build, run checkov on it."""
