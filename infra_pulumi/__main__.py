"""Pulumi entry point: read the stack config once, compose the layers, export the outputs."""

from infra_pulumi.config import load_config
from infra_pulumi.program import build, export

export(build(load_config()))
