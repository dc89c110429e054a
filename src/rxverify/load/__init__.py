"""Load tests: the guarded Locust client, the open model, exact latencies, SLOs and reports."""
