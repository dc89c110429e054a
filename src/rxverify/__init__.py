"""rxverify: contract, load and production verification of the prescription-platform migration."""

__version__ = "0.1.0"
