"""`uv sync` installs from wheels alone where cameras live: Raspberry Pi OS 64-bit and macOS.

Read from uv.lock, without a network: every package that `uv sync --all-extras` (the dev
group included, as docs/install.md's `uv sync` has it) installs on aarch64 Linux and on Apple
Silicon must have a wheel there. A dependency that has none (atheris, before it got a
platform marker) makes `uv sync` build from source, which fails on a Pi without compilers.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
LOCK = tomllib.loads((ROOT / "uv.lock").read_text("utf-8"))

# Raspberry Pi OS 12 (bookworm) has glibc 2.36; Apple Silicon Macs run macOS 11 or later
# (PyAV's arm64 wheels want macOS 14, Sonoma, which is what the docs ask for).
PI_PLATFORMS = [f"manylinux_2_{n}_aarch64" for n in range(36, 16, -1)]
PI_PLATFORMS += ["manylinux2014_aarch64", "linux_aarch64"]
MAC_PLATFORMS = [f"macosx_{v}_0_{a}" for v in range(14, 10, -1) for a in ("arm64", "universal2")]

TARGETS = {
    "aarch64 Linux (Raspberry Pi OS 64-bit)": ("linux", "aarch64", "Linux", PI_PLATFORMS),
    "macOS on Apple Silicon": ("darwin", "arm64", "Darwin", MAC_PLATFORMS),
}
PYTHONS = [(3, 11), (3, 12), (3, 13)]  # bookworm has 3.11, trixie 3.13


def _environment(system: str, machine: str, platform_system: str, python: tuple[int, int]):  # type: ignore[no-untyped-def]
    return {
        "sys_platform": system,
        "platform_machine": machine,
        "platform_system": platform_system,
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": f"{python[0]}.{python[1]}",
        "python_full_version": f"{python[0]}.{python[1]}.2",
        "extra": "",
    }


def _packages() -> dict[str, list[dict[str, Any]]]:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in LOCK["package"]:
        by_name.setdefault(canonicalize_name(package["name"]), []).append(package)
    return by_name


def _installed(env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Every locked package uv installs for ``env`` (all extras, the dev group)."""
    by_name = _packages()
    [root] = by_name["alexa-doorbell"]
    todo = list(root.get("dependencies", []))
    for group in (root.get("optional-dependencies", {}), root.get("dev-dependencies", {})):
        for deps in group.values():
            todo += deps
    seen: set[tuple[str, str]] = set()
    while todo:
        dep = todo.pop()
        if "marker" in dep and not Marker(dep["marker"]).evaluate(env):
            continue
        candidates = by_name[canonicalize_name(dep["name"])]
        if "version" in dep:
            candidates = [p for p in candidates if p["version"] == dep["version"]]
        else:  # one version per environment: pick by the package's resolution markers
            candidates = [
                p
                for p in candidates
                if not p.get("resolution-markers")
                or any(Marker(m).evaluate(env) for m in p["resolution-markers"])
            ]
        [package] = candidates
        key = (package["name"], package["version"])
        extras = tuple(dep.get("extra", []))
        if key in seen and not extras:
            continue
        seen.add(key)
        yield package
        todo += package.get("dependencies", [])
        for extra in extras:
            todo += package.get("optional-dependencies", {}).get(extra, [])


def _has_wheel(package: dict[str, Any], tags: set[Tag]) -> bool:
    for wheel in package.get("wheels", []):
        filename = wheel["url"].rsplit("/", 1)[-1]
        if set(parse_wheel_filename(filename)[3]) & tags:
            return True
    return False


@pytest.mark.parametrize("python", PYTHONS, ids=lambda p: f"py{p[0]}.{p[1]}")
@pytest.mark.parametrize("target", list(TARGETS))
def test_every_locked_package_has_a_wheel(target: str, python: tuple[int, int]) -> None:
    system, machine, platform_system, platforms = TARGETS[target]
    env = _environment(system, machine, platform_system, python)
    tags = set(cpython_tags(python, platforms=platforms))
    tags |= set(compatible_tags(python, "cp" + "".join(map(str, python)), platforms))
    packages = list(_installed(env))
    missing = sorted(
        f"{p['name']}=={p['version']}"
        for p in packages
        if "wheels" in p or "sdist" in p  # the project itself has neither
        if not _has_wheel(p, tags)
    )
    assert len(packages) > 60  # the walk found the whole tree, not a corner of it
    assert missing == [], f"{target}, Python {python}: no wheel for {missing}"


def test_atheris_is_only_for_x86_64_linux() -> None:
    """The fuzzer stays in the dev group where it has wheels (the suite's own machines)."""
    x86 = _environment("linux", "x86_64", "Linux", (3, 11))
    pi = _environment("linux", "aarch64", "Linux", (3, 11))
    assert "atheris" in {p["name"] for p in _installed(x86)}
    assert "atheris" not in {p["name"] for p in _installed(pi)}
