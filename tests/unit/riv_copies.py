"""Copies of contracts/riv for tests: a user's own contracts, another major version dropped in, a broken file."""

from __future__ import annotations

import shutil
from pathlib import Path

from .conftest import CONTRACTS


def copy_contracts(tmp_path: Path) -> Path:
    """A copy of the whole contracts folder (the user's own, to change)."""
    target = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, target)
    return target


def add_major(contracts: Path, service: str, old: int, new: int) -> tuple[Path, Path]:
    """Drop in major `new` of `service` beside `old`: its WSDL and responder XSD, renamed as RIV-TA names them.

    Written from the `old` files with the namespace, soapAction, address and file names of the new major:
    what a user who has the agency's other major version puts beside ours. No code changes.
    """
    folder = contracts / "riv" / "interactions" / f"{service}Interaction"
    wsdl = folder / f"{service}Interaction_{old}.0_rivtabp21.wsdl"
    xsd = folder / f"{service}Responder_{old}.0.xsd"
    new_wsdl = folder / f"{service}Interaction_{new}.0_rivtabp21.wsdl"
    new_xsd = folder / f"{service}Responder_{new}.0.xsd"

    def renamed(text: str) -> str:
        return (text.replace(f"{service}Responder:{old}", f"{service}Responder:{new}")
                .replace(f"{service}:{old}:rivtabp21", f"{service}:{new}:rivtabp21")
                .replace(f"{service}Responder_{old}.0.xsd", f"{service}Responder_{new}.0.xsd")
                .replace(f"{service}Responder/V{old}", f"{service}Responder/V{new}")
                .replace(f'version="{old}.0"', f'version="{new}.0"'))

    new_wsdl.write_text(renamed(wsdl.read_text(encoding="utf-8")), encoding="utf-8")
    new_xsd.write_text(renamed(xsd.read_text(encoding="utf-8")), encoding="utf-8")
    return new_wsdl, new_xsd
