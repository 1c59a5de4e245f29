"""Dependencies point one way (STYLE.md guideline 2): packages are layers, a module imports
only from layers below its own, packages that share a layer never import each other, and
there is no allow-list of exceptions. Nothing below web imports Flask; only store knows SQL."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "feedsvc"

LAYERS: list[set[str]] = [
    {"model", "errors", "log", "lru"},
    {"config", "urls", "metrics", "memory"},
    {"sources", "content", "store", "feeds"},
    {"scan"},
    {"web", "federation"},
    {"serve"},
    {"cli"},
    {"__main__"},
]
PACKAGES = {"sources", "content", "store", "feeds", "scan", "web", "federation", "serve"}


def top_module(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def layer_of(name: str) -> int:
    for i, layer in enumerate(LAYERS):
        if name in layer:
            return i
    raise AssertionError(f"module {name} has no layer in test_architecture.LAYERS")


def imports(path: Path) -> set[str]:
    """The top-level feedsvc modules and packages that a file imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("feedsvc."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "feedsvc":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("feedsvc."))
    return found


def third_party(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
    return names


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if not (p.parent == PACKAGE and p.name == "__init__.py"))


def test_every_module_imports_only_from_lower_layers() -> None:
    violations = [f"{path.relative_to(PACKAGE)} imports {other}"
                  for path in modules() for other in imports(path) - {top_module(path)}
                  if layer_of(other) >= layer_of(top_module(path))]
    assert violations == []


def test_the_layers_catch_a_sibling_import() -> None:
    """The rule above is not vacuous: sources and content share a layer, so one importing the
    other is a violation, as is scan importing web."""
    assert layer_of("content") >= layer_of("sources")
    assert layer_of("web") >= layer_of("scan")


def test_the_top_level_is_the_shared_vocabulary_and_the_stages_are_packages() -> None:
    flat = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert flat == {"cli", "model", "errors", "config", "urls", "metrics", "log", "memory", "lru"}
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} <= PACKAGES


def test_nothing_below_web_imports_flask_and_only_store_imports_sqlalchemy() -> None:
    for path in modules():
        me = top_module(path)
        names = third_party(path)
        if "flask" in names or "werkzeug" in names:
            assert me in {"web", "federation", "serve", "cli"}, path
        if "sqlalchemy" in names or "alembic" in names:
            assert me == "store", path


def test_modules_stay_small() -> None:
    big = [(p.relative_to(PACKAGE), n) for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500]
    assert big == []


def test_the_test_knows_every_module() -> None:
    for path in modules():
        layer_of(top_module(path))
