"""Offline tests of the Pulumi program (mocks), its config, the plan exporter and outputs_to_env."""
