"""Pieces both reference platforms use: tickets, store, faults, test data, validation, the legacy bindings."""
