"""Packaging: environment.yml and pyproject.toml list the same dependencies; the CLI entry
points exist; the Makefile and CI call what the README says."""

import re

import pytest
import yaml

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

from gan_utils.core.paths import PROJECT_ROOT

CONDA_NAMES = {"pytorch": "torch"}  # conda package name -> PyPI name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in project["dependencies"]}
    for extra in ("dev", "cluster"):
        pip_names |= {_name(r) for r in project["optional-dependencies"][extra]}

    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    conda_names = set()
    pip_section = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_section += dep.get("pip", [])
            continue
        name = _name(dep)
        if name not in {"python", "pip"}:
            conda_names.add(CONDA_NAMES.get(name, name))
    assert conda_names == pip_names
    assert "-e ." in pip_section  # installs the package itself


def test_torch_has_lower_bounds_only_and_nothing_is_pinned_exactly():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    requirements = project["dependencies"] + extras["dev"] + extras["cluster"]
    assert not [r for r in requirements if "==" in r or "<" in r]
    assert any(r.startswith("torch>=") for r in requirements)
    assert any(r.startswith("torchvision>=") for r in requirements)


def test_ci_runs_the_readme_test_command():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make run" in readme
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    for target in ("run:", "test:", "lab:", "lint:"):
        assert re.search(rf"^{target}", makefile, re.M), target
