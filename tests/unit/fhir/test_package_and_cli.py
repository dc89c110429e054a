"""Loading conformance packages (folder, NPM folder, .tgz), their one-line errors, `rxverify fhir validate` and
`rxverify fhir snapshot`."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from rxverify.cli import main
from rxverify.errors import UserError
from rxverify.fhir.package import load_package
from rxverify.fhir.validator import Validator

from .conftest import FHIR_DIR
from .corpus import cases

MR_PROFILE = json.loads((FHIR_DIR / "StructureDefinition-NLLMedicationRequest.json").read_text("utf-8"))["url"]
EXAMPLE = FHIR_DIR / "examples" / "MedicationRequest-3f2504e0-4f89-41d3-9a0c-0305e82c3301.json"


def _tgz(target: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(target, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return target


def _package_files() -> dict[str, bytes]:
    files = {"package/package.json": json.dumps({"name": "rxverify.test", "version": "21.0.0"}).encode()}
    for path in FHIR_DIR.rglob("*.json"):
        files[f"package/{path.relative_to(FHIR_DIR).as_posix()}"] = path.read_bytes()
    return files


def test_folder_indexes_by_url_and_version() -> None:
    """Package: a folder is read recursively; canonical resources by url and url|version; examples aside."""
    package = load_package(FHIR_DIR)
    assert package.find(MR_PROFILE) is package.find(f"{MR_PROFILE}|21.0")
    assert package.supported_profiles("MedicationRequest") == [MR_PROFILE]
    assert {r["resourceType"] for _, r in package.examples} >= {"MedicationRequest", "Parameters"}
    assert all(r["resourceType"] not in ("StructureDefinition", "ValueSet") for _, r in package.examples)


def test_tgz_package_validates_like_the_folder(tmp_path: Path) -> None:
    """Package: an NPM-style .tgz (package/package.json) gives the same findings as the folder."""
    package = load_package(_tgz(tmp_path / "ig.tgz", _package_files()))
    assert package.name == "rxverify.test"
    broken = next(c.resource for c in cases() if c.id == "profile-closed-slicing")
    assert Validator(package).validate(broken) == Validator(load_package(FHIR_DIR)).validate(broken)


def test_npm_folder(tmp_path: Path) -> None:
    """Package: a folder holding package/package.json is read from package/."""
    shutil.copytree(FHIR_DIR, tmp_path / "package")
    (tmp_path / "package" / "package.json").write_text('{"name": "x", "version": "1"}', encoding="utf-8")
    assert load_package(tmp_path).find(MR_PROFILE) is not None


def test_broken_file_is_one_line(tmp_path: Path) -> None:
    """Package: a broken file is a UserError naming the file."""
    files = _package_files()
    files["package/ValueSet-broken.json"] = b"{ not json"
    with pytest.raises(UserError, match=r"ValueSet-broken\.json is not valid JSON"):
        load_package(_tgz(tmp_path / "ig.tgz", files))


def test_missing_referenced_resource_is_named(tmp_path: Path) -> None:
    """Package: a profile whose bound ValueSet is missing is a UserError naming the ValueSet and the profile."""
    shutil.copytree(FHIR_DIR, tmp_path / "ig")
    (tmp_path / "ig" / "ValueSet-nll-medicationrequest-status.json").unlink()
    with pytest.raises(UserError, match=r"no ValueSet http://electronichealth.se/fhir/ValueSet/nll-medicationrequest"):
        Validator(load_package(tmp_path / "ig")).plan(MR_PROFILE)


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """CLI: 0 when valid, 1 with an error (one line per issue, a summary per file), 2 for bad input."""
    assert main(["fhir", "validate", str(EXAMPLE)]) == 0
    assert "Success: 0 errors" in capsys.readouterr().out
    wrong = tmp_path / "wrong-status.json"
    wrong.write_text(json.dumps({**json.loads(EXAMPLE.read_text("utf-8")), "status": "aktiv"}), encoding="utf-8")
    assert main(["fhir", "validate", str(EXAMPLE), str(wrong)]) == 1
    out = capsys.readouterr().out
    assert "Error @ MedicationRequest.status: [code-invalid]" in out and "*FAILURE*: 1 errors" in out
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    for argv in (
        ["fhir", "validate", str(tmp_path / "missing.json")],
        ["fhir", "validate", str(bad)],
        ["fhir", "validate", "--profile", "http://example.org/no-such-profile", str(EXAMPLE)],
        ["fhir", "validate", "--package", str(tmp_path / "nowhere"), str(EXAMPLE)],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("rxverify: ") and "Traceback" not in err
    tgz = _tgz(tmp_path / "ig.tgz", _package_files())
    assert main(["fhir", "validate", "--package", str(tgz), "--profile", MR_PROFILE, str(EXAMPLE)]) == 0


def test_cli_validates_the_conformance_resources(capsys: pytest.CaptureFixture[str]) -> None:
    """CLI: the contract's own conformance resources are valid R4 (what CI's lint runs): exit 0, no error or warning."""
    files = sorted(str(p) for p in FHIR_DIR.glob("*.json"))
    assert main(["fhir", "validate", *files]) == 0
    out = capsys.readouterr().out
    assert out.count("Success: 0 errors, 0 warnings") == len(files)


def test_cli_snapshot_check_and_regenerate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """CLI: `fhir snapshot --check` is 0 on the committed profiles, 1 on a stale one; `fhir snapshot` rewrites it."""
    assert main(["fhir", "snapshot", "--check"]) == 0
    folder = tmp_path / "profiles"
    folder.mkdir()
    target = folder / "StructureDefinition-nll-workplace-code.json"
    profile = json.loads((FHIR_DIR / target.name).read_text("utf-8"))
    profile["snapshot"]["element"] = profile["snapshot"]["element"][:2]
    target.write_text(json.dumps(profile), encoding="utf-8")
    assert main(["fhir", "snapshot", "--folder", str(folder), "--check"]) == 1
    assert "stale snapshot" in capsys.readouterr().out
    assert main(["fhir", "snapshot", "--folder", str(folder)]) == 0
    assert target.read_text("utf-8") == (FHIR_DIR / target.name).read_text("utf-8")
    assert main(["fhir", "snapshot", "--folder", str(tmp_path / "nowhere")]) == 2
