"""The imports of a Python file, read from its syntax tree (so an import inside a function
counts too): what the layering tests check."""

from __future__ import annotations

import ast
from pathlib import Path


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def imports(path: Path, *, runtime_only: bool = False) -> list[tuple[str, int, int]]:
    """(absolute module name, level, line) of every import in the file. Relative imports are
    resolved against the pcapdiag package. With runtime_only, imports under
    `if TYPE_CHECKING:` are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if _type_checking_block(node):
                for sub in ast.walk(node):
                    skip.add(id(sub))
    out: list[tuple[str, int, int]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(alias.name, 0, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = "pcapdiag" + ("." + node.module if node.module else "")
                if node.module is None:
                    out += [(f"pcapdiag.{a.name}", node.level, node.lineno) for a in node.names]
                else:
                    out.append((base, node.level, node.lineno))
            elif node.module == "pcapdiag":  # from pcapdiag import module
                out += [(f"pcapdiag.{a.name}", 0, node.lineno) for a in node.names]
            else:
                out.append((node.module or "", 0, node.lineno))
    return out
