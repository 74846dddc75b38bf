"""The house rules that keep the layers apart, checked on the source itself."""

from __future__ import annotations

import ast
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Allowed imports: web -> index -> aggregator, and web -> aggregator (STYLE.md).
FORBIDDEN = {
    "aggregator": {"index", "web"},
    "index": {"web"},
}


def imported_packages(path: Path) -> set[str]:
    """Return the top-level names a module imports (absolute imports only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_only_downwards(package: str) -> None:
    offenders = []
    for path in sorted((REPO / package).rglob("*.py")):
        bad = imported_packages(path) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert offenders == []


def test_import_checker_sees_a_violation(tmp_path: Path) -> None:
    # The checker itself must be able to fail.
    module = tmp_path / "m.py"
    module.write_text("import web.app\nfrom index.search import search\n")
    assert imported_packages(module) == {"web", "index"}


def test_exactly_one_whoosh_distribution_installed() -> None:
    # Whoosh forks share the `whoosh` module name; two installed side by side overwrite each other.
    whooshes = sorted(
        {
            dist.metadata["Name"].lower()
            for dist in metadata.distributions()
            if "whoosh" in (dist.metadata["Name"] or "").lower()
            and "whoosh" in (dist.read_text("top_level.txt") or "whoosh").split()
        }
    )
    assert whooshes == ["whoosh-reloaded"]
    assert metadata.version("whoosh-reloaded") == "2.7.5"
