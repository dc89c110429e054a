"""The old interface: one client, XSD-driven strategies."""
