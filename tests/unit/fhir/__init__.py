"""Tests of rxverify.fhir (issue 4)."""
