"""The new platform (ECP stand-in): a FHIR R4 core, its REST API and the legacy transformer on top."""
