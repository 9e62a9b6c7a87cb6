"""One ComponentResource per layer of the AWS architecture."""
