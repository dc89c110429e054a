"""FHIR conformance, offline: package loading, profile validation and profile-driven generation."""
