"""The Go/No-go gate: the release criteria applied to everything a run reported."""
