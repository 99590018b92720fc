"""Packaging as PyPI shows it: LICENSE and SPDX license, URLs, classifiers, the pytest11 plugin, a README
whose links and facts hold outside the repository."""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

import pytest

from minimaxvl_tools import serve
from minimaxvl_tools.profile import image_tokens

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
README = (ROOT / "README.md").read_text("utf-8")


def test_license_file_is_the_full_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 150


def test_project_metadata_spdx_license_urls_classifiers() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"  # an SPDX expression, not a {text = ...} table
    assert "LICENSE" in project["license-files"]
    requires = PYPROJECT["build-system"]["requires"]
    assert any(re.fullmatch(r"setuptools>=(\d+)", r) and int(r.split(">=")[1]) >= 77 for r in requires)
    urls = project["urls"]
    assert urls and all(u.startswith("https://") for u in urls.values())
    classifiers = project["classifiers"]
    assert "Typing :: Typed" in classifiers and "Framework :: Pytest" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639: the expression says it
    assert project["optional-dependencies"]["serve"][0] == serve.VLLM_REQUIREMENT


def test_installed_metadata_carries_the_license() -> None:
    meta = md.metadata("minimaxvl-tools")
    assert meta["License-Expression"] == "Apache-2.0"
    assert "LICENSE" in (meta.get_all("License-File") or [])


def test_pytest_plugin_is_an_entry_point_registered_once(pytestconfig: pytest.Config) -> None:
    eps = [e for e in md.entry_points(group="pytest11") if e.name == "minimaxvl_tools"]
    assert [e.value for e in eps] == ["minimaxvl_tools.testing.pytest_plugin"]
    assert PYPROJECT["project"]["entry-points"]["pytest11"] == {
        "minimaxvl_tools": "minimaxvl_tools.testing.pytest_plugin"
    }
    conftest = (ROOT / "tests" / "conftest.py").read_text("utf-8")
    assert "pytest_plugins" not in conftest  # the entry point already loads it: no double registration
    plugin = pytestconfig.pluginmanager.get_plugin("minimaxvl_tools")
    assert plugin is not None and plugin.__name__ == "minimaxvl_tools.testing.pytest_plugin"


def test_readme_links_work_on_pypi() -> None:
    targets = re.findall(r"\]\(([^)]+)\)", README)
    relative = [t for t in targets if not t.startswith(("https://", "http://", "#"))]
    assert relative == []  # a repository-relative link is a 404 on PyPI


def test_readme_token_costs_match_image_tokens() -> None:
    claims = re.findall(r"(\d+)x(\d+)(?: image)? costs (\d{1,3}(?:,\d{3})*)", README)
    assert ("300", "200", "976") in claims
    for w, h, tokens in claims:
        assert image_tokens(int(w), int(h)) == int(tokens.replace(",", "")), (w, h, tokens)


def test_readme_vllm_window_is_what_serve_checks() -> None:
    assert serve.VLLM_REQUIREMENT in README and serve.TRANSFORMERS_REQUIREMENT in README
    assert "0.9.0 to 0.23.0 support" not in README


def test_agents_extra_says_how_to_run_the_agents() -> None:
    packages = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert packages == ["minimaxvl_tools*"]  # agents/ is not shipped in the wheel ...
    assert "not part of the wheel" in README and "python -m agents.scanned_pdf_rag" in README  # ... said so
