"""requirements.txt, pyproject.toml and requirements.lock agree (`make lock` writes the lock).

requirements.txt pins what CI tests, pyproject.toml gives the ranges a `pip install .` may take,
and the lock is what `make install` installs: a pin outside its range, a range open above, or a
lock that was not remade after a pin changed would each install something CI never ran.
"""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def pins() -> dict[str, Requirement]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    found = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(r.name): r for r in found}


def declared() -> list[Requirement]:
    """Every requirement pyproject.toml states: dependencies, extras, dependency groups."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    texts = list(project["project"]["dependencies"])
    for extra in project["project"].get("optional-dependencies", {}).values():
        texts += extra
    for group in project.get("dependency-groups", {}).values():
        texts += [entry for entry in group if isinstance(entry, str)]
    return [Requirement(text) for text in texts]


def locked() -> dict[str, set[str]]:
    """name -> the versions requirements.lock holds (one per Python or platform it forks on)."""
    versions: dict[str, set[str]] = {}
    for match in re.finditer(
        r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)",
        (ROOT / "requirements.lock").read_text(),
        re.MULTILINE,
    ):
        versions.setdefault(canonicalize_name(match[1]), set()).add(match[2])
    return versions


def exact(requirement: Requirement) -> str:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not pinned exactly"
    return spec.version


def test_every_pin_is_exact_and_in_the_lock_at_that_version():
    lock = locked()
    for name, requirement in pins().items():
        assert lock.get(name) == {exact(requirement)}, (
            f"requirements.txt pins {requirement}, requirements.lock has {lock.get(name)}: "
            "run `make lock`"
        )


def test_every_declared_range_is_bounded_above_and_holds_the_pin():
    pinned = pins()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert any(spec.operator in ("<", "<=", "==", "~=") for spec in requirement.specifier), (
            f"{requirement} in pyproject.toml has no upper bound"
        )
        assert name in pinned, f"{requirement} is declared but not pinned in requirements.txt"
        assert requirement.specifier.contains(exact(pinned[name])), (
            f"requirements.txt pins {pinned[name]}, outside pyproject.toml's {requirement}"
        )
        assert requirement.extras <= pinned[name].extras, (
            f"{requirement} asks for extras requirements.txt does not install"
        )


def test_every_locked_package_carries_hashes():
    text = (ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[-1])
    packages = [entry for entry in entries if "==" in entry.split("\n", 1)[0]]
    assert len(packages) == sum(len(v) for v in locked().values())
    for entry in packages:
        assert "--hash=sha256:" in entry, f"no hash for {entry.splitlines()[0]}"
