"""Layering: the core (decoding, tracking, flows, rule evaluation) is sans-IO and takes time
only from the capture; only the command line knows about click. Checked on the source (ast),
so an import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.imports import imports

PKG = Path(__file__).resolve().parents[2] / "pcapdiag"
# The sans-IO core: decoding, tracking, rule evaluation.
CORE = ["decode", "track", "rules/engine.py"]
FORBIDDEN = {
    "click",
    "yaml",
    "json",
    "time",
    "datetime",
    "os",
    "pathlib",
    "io",
    "socket",
    "random",
}


def core_modules() -> list[Path]:
    paths: list[Path] = []
    for name in CORE:
        where = PKG / name
        paths += sorted(where.glob("*.py")) if where.is_dir() else [where]
    return paths


def top(name: str) -> str:
    return name.split(".")[0]


def test_core_modules_exist() -> None:
    paths = core_modules()
    missing = [p.name for p in paths if not p.is_file()]
    assert not missing
    names = {str(p.relative_to(PKG)) for p in paths}
    assert {"decode/link.py", "decode/ip.py", "track/connection.py", "rules/engine.py"} <= names


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_core_module_is_sans_io(path: Path) -> None:
    bad = [
        f"{path.name}:{line}: imports {name}"
        for name, _, line in imports(path)
        if top(name) in FORBIDDEN
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_imports_everywhere(tmp_path: Path) -> None:
    # the checker itself: a function-level import and a relative import are both found
    src = tmp_path / "m.py"
    src.write_text(
        "from __future__ import annotations\n"
        "from . import rules\n"
        "from .events import Event\n"
        "def f():\n"
        "    import time\n"
        "    from os import path\n"
        "    return time, path\n",
        encoding="utf-8",
    )
    names = {n for n, _, _ in imports(src)}
    assert {"pcapdiag.rules", "pcapdiag.events", "time", "os"} <= names


def test_only_cli_imports_click() -> None:
    importers = sorted(
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if any(top(name) == "click" for name, _, _ in imports(p))
    )
    assert importers == ["cli.py"]


def module_path(name: str) -> Path | None:
    """The file of a pcapdiag module (a package's __init__.py), or None (a name imported
    from a module, not a module)."""
    parts = name.split(".")[1:]
    if not parts:
        return PKG / "__init__.py"
    rel = Path(*parts)
    for cand in (PKG / rel.with_suffix(".py"), PKG / rel / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _closure(start: Path) -> dict[Path, list[str]]:
    """pcapdiag modules reachable from `start` through runtime imports, each with the import
    chain that reaches it."""
    label = str(start.relative_to(PKG))
    seen: dict[Path, list[str]] = {start: [label]}
    todo = [start]
    while todo:
        path = todo.pop()
        chain = seen[path]
        for name, _, _ in imports(path, runtime_only=True):
            if not name.startswith("pcapdiag."):
                continue
            target = module_path(name) or module_path(name.rsplit(".", 1)[0])
            if target is not None and target not in seen:
                seen[target] = [*chain, str(target.relative_to(PKG))]
                todo.append(target)
    return seen


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_core_module_does_not_reach_io_through_the_package(path: Path) -> None:
    """Sans-IO holds transitively: no pcapdiag module the core imports at runtime imports a
    forbidden module either."""
    bad = []
    for mod, chain in _closure(path).items():
        for name, _, line in imports(mod, runtime_only=True):
            if top(name) in FORBIDDEN:
                bad.append(f"{' -> '.join(chain)} ({mod.name}:{line} imports {name})")
    assert not bad, "\n".join(bad)


# -- renderers only draw -------------------------------------------------------------------------


def render_modules() -> list[Path]:
    return sorted((PKG / "render").glob("*.py"))


def io_imports(path: Path, package: tuple[str, ...]) -> list[str]:
    """Each import of pcapdiag.io in a module of `package`, in any form: `import
    pcapdiag.io.x`, `from pcapdiag.io.x import y`, `from pcapdiag import io`, relative ones."""

    def is_io(name: str) -> bool:
        return name == "pcapdiag.io" or name.startswith("pcapdiag.io.")

    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = base + ("." + node.module if node.module else "")
            else:
                module = node.module or ""
            names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        if any(is_io(name) for name in names):
            out.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return out


@pytest.mark.parametrize("path", render_modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_renderer_does_not_import_io(path: Path) -> None:
    """Renderers draw what the report holds; the packets they show (ladders, --export) were
    read by the second pass (evidence.py), not by them."""
    bad = io_imports(path, ("pcapdiag", "render"))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", render_modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_renderer_does_not_reach_a_file_reader(path: Path) -> None:
    """Nor through the modules it imports: of io, only the record types (records.py, which
    the report model names) may be reached, never what opens or reads a capture."""
    bad = [
        " -> ".join(chain)
        for mod, chain in _closure(path).items()
        if mod.parent == PKG / "io" and mod.name not in ("__init__.py", "records.py")
    ]
    assert not bad, "\n".join(bad)


def test_the_renderer_check_sees_every_form(tmp_path: Path) -> None:
    names = {p.name for p in render_modules()}
    assert {"html.py", "markdown.py", "pcap.py", "text.py"} <= names
    forms = [
        "import pcapdiag.io.reader",
        "from pcapdiag.io.records import Frame",
        "from pcapdiag import io",
        "from ..io import sources",
        "from ..io.sources import merged_frames",
    ]
    for form in forms:
        src = tmp_path / "m.py"
        src.write_text(f"def f():\n    {form}\n", encoding="utf-8")
        assert io_imports(src, ("pcapdiag", "render")), form
    src.write_text("import io\nfrom pcapdiag.findings import ladder\n", encoding="utf-8")
    assert io_imports(src, ("pcapdiag", "render")) == []
