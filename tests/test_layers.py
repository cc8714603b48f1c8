"""The code's layers import one way: views over services, never the other way round.

A view (a module named `views` or `*_views`) takes the helpdesk client, the session and the
caches from the app (`plugin.helpdesks.runtime`, `plugin.web`) and hands them to services; a
service never reaches back for them. Only views and the app factory use `plugin.web`.
"""

from __future__ import annotations

import ast
from pathlib import Path

PLUGIN = Path(__file__).resolve().parent.parent / "plugin"
FACTORY = "plugin"
RUNTIME = "plugin.helpdesks.runtime"


def module_name(path: Path) -> str:
    parts = path.relative_to(PLUGIN.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PLUGIN.rglob("*.py"))}


def imported(path: Path) -> set[str]:
    """Every module the file imports, by its full name (`from a import b` counts a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_view(name: str) -> bool:
    last = name.rpartition(".")[2]
    return last == "views" or last.endswith("_views")


def is_web(name: str) -> bool:
    return name == "plugin.web" or name.startswith("plugin.web.")


def is_cli(name: str) -> bool:
    last = name.rpartition(".")[2]
    return last == "cli" or last.endswith("_cli") or last == "cli_support"


SERVICES = [
    name
    for name in MODULES
    if not (is_view(name) or is_web(name) or is_cli(name) or name in {FACTORY, RUNTIME})
]


def test_a_service_imports_no_view_no_web_plumbing_and_not_the_apps_runtime() -> None:
    wrong = {
        name: found
        for name in SERVICES
        if (
            found := sorted(
                module
                for module in imported(MODULES[name])
                if is_web(module) or is_view(module) or module.startswith(RUNTIME)
            )
        )
    }
    assert not wrong, f"services reaching back into the app (hand them what they need): {wrong}"


def test_only_views_and_the_factory_use_the_web_plumbing() -> None:
    wrong = {
        name: found
        for name, path in MODULES.items()
        if not (is_view(name) or is_web(name) or name == FACTORY)
        and (found := sorted(module for module in imported(path) if is_web(module)))
    }
    assert not wrong, f"only views (and create_app) use plugin.web: {wrong}"


def test_the_sweep_tells_the_layers_apart() -> None:
    assert len(SERVICES) > 50
    assert "plugin.sidebar.recognition" in SERVICES
    assert "plugin.sidebar.views" not in SERVICES
    assert "plugin.delivery.cli" in MODULES and "plugin.delivery.cli" not in SERVICES
