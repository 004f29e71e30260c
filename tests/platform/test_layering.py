"""The dependency rules of docs/architecture.md, read from the imports of the code itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The project's routing and settings name every app; the rest of ``owt`` is below them.
OWT_ROUTING = {"owt/asgi.py", "owt/urls.py", "owt/settings.py"}


def imported_packages(path: Path) -> set[str]:
    """Top-level names (``django``, ``conference`` …) and ``streamengine.x`` modules a file imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            names.add(parts[0])
            if parts[0] == "streamengine" and len(parts) > 1:
                names.add(".".join(parts[:2]))
    return names


def sources(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", sources("streamengine/media"), ids=lambda p: p.name)
def test_media_package_knows_neither_django_nor_channels_nor_the_engine(path):
    imports = imported_packages(path)
    assert not imports & {"django", "channels", "conference", "rest_framework"}
    assert all(name == "streamengine.media" for name in imports if name.startswith("streamengine."))


@pytest.mark.parametrize("path", sources("streamengine"), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_never_imports_the_apps_above_it(path):
    assert not imported_packages(path) & {"conference", "egress"}


@pytest.mark.parametrize("path", sources("owt"), ids=lambda p: str(p.relative_to(ROOT)))
def test_owt_is_the_ground_floor(path):
    if str(path.relative_to(ROOT)) in OWT_ROUTING:
        return
    assert not imported_packages(path) & {"conference", "streamengine", "egress", "metrics", "portal_stats"}
