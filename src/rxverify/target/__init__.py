"""Targets, the run a target becomes (one builder), the local platforms, credentials."""
