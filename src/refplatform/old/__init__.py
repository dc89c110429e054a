"""The old platform (STP stand-in): the legacy service interface on its own relational store."""
