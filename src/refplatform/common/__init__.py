"""Pieces both reference platforms use: tickets, store, faults, test data, request validation."""
