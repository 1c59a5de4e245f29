"""Dependencies point one way (STYLE.md guideline 2): a module imports only from layers
below it, siblings in one layer stay independent, and nothing below web imports Flask."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "feedsvc"

LAYERS: list[set[str]] = [
    {"model", "errors", "log", "process"},
    {"config", "shared"},
    {"urls", "webhook", "metrics", "gitpull"},
    {"sources", "content", "store", "feeds", "dating", "gitdiff"},
    {"scan", "pipeline", "planning", "siteindex", "sitecache", "filestats", "scanscope", "walkdiff", "forkwalk", "rendering", "publishing", "websub", "mediasync"},
    {"scheduler", "web", "export", "relay", "watcher"},  # watcher: watch = true sources
    {"server"},  # the pre-fork server: wires scheduler, relay and web per process
    {"cli"},
    {"__main__"},
]
# within layer 4 the orchestrator may use its helpers, which stay below it
INTRA_LAYER_ALLOWED = {("scan", "pipeline"), ("pipeline", "mediasync"), ("pipeline", "planning"),
                       ("pipeline", "siteindex"), ("pipeline", "rendering"), ("publishing", "scan"),
                       ("web", "export"), ("export", "web"),
                       ("pipeline", "sitecache"), ("pipeline", "scanscope"), ("pipeline", "walkdiff"),
                       ("sitecache", "siteindex"), ("sitecache", "filestats"),
                       ("sitecache", "walkdiff"), ("pipeline", "forkwalk")}
SIBLINGS = [{"sources", "content", "store", "feeds", "dating"}, {"scheduler", "web"}]


def top_module(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0]


def layer_of(name: str) -> int:
    for i, layer in enumerate(LAYERS):
        if name in layer:
            return i
    raise AssertionError(f"module {name} has no layer in test_architecture.LAYERS")


def imports(path: Path) -> set[str]:
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


def test_every_module_respects_the_layers() -> None:
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        me = top_module(path)
        for other in imports(path) - {me}:
            if (me, other) in INTRA_LAYER_ALLOWED:
                continue
            if layer_of(other) >= layer_of(me):
                violations.append(f"{path.relative_to(PACKAGE)} imports {other}")
    assert violations == []


def test_siblings_do_not_import_each_other() -> None:
    for path in PACKAGE.rglob("*.py"):
        me = top_module(path)
        for group in SIBLINGS:
            if me in group:
                assert not (imports(path) & (group - {me})), path


def test_only_web_and_cli_import_flask_and_only_store_imports_sqlalchemy() -> None:
    for path in PACKAGE.rglob("*.py"):
        me = top_module(path)
        names = third_party(path)
        if "flask" in names:
            assert me in {"web", "export"}, path
        if "sqlalchemy" in names:
            assert me == "store", path


def test_modules_stay_small() -> None:
    big = [(p.relative_to(PACKAGE), n) for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500]
    assert big == []


def test_the_test_knows_every_module() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.parent == PACKAGE and path.name == "__init__.py":
            continue
        layer_of(top_module(path))
