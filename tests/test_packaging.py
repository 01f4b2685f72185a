"""pyproject.toml builds without deprecation warnings: the licence is an SPDX string, and the
build requires a setuptools that reads it (a TOML table is deprecated, with a deadline)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_license_is_an_spdx_string_and_setuptools_reads_it():
    doc = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    assert doc["project"]["license"] == "MIT"  # not {text = "MIT"}
    requirements = [Requirement(r) for r in doc["build-system"]["requires"]]
    setuptools = [r for r in requirements if r.name == "setuptools"]
    assert len(setuptools) == 1
    # setuptools 77 is the first to accept project.license as an SPDX expression
    assert not setuptools[0].specifier.contains(Version("76.1.0"))
    assert setuptools[0].specifier.contains(Version("77.0.0"))
