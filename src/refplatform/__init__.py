"""Embedded reference platforms: the old (STP) and the new (ECP) national prescription platform.

A stand-in for the real platforms, built the way a vendor would build them. It shares no code
with the suite (`rxverify`), which must never import it.
"""

__version__ = "21.0-ref.1"
