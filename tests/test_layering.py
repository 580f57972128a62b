"""The layering is true: the contract (design format, errors, YAML loader, golden model) sits on the
ground floor and imports no stage; each stage imports only the floors below it; only the command
line and the demo import everything. Every import counts, at module level or inside a function."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GROUND = {"adcforge.errors", "adcforge.yamlfile", "adcforge.design", "adcforge.golden",
          "adcforge.console", "adcforge.examples", "adcforge"}
TOP = {"adcforge.cli", "adcforge.demo", "adcforge.__main__"}
STAGES = ("sim", "learn", "hdl", "tb", "boards")
# What each floor may import, besides itself and third-party packages.
ALLOWED = {
    "ground": set(),
    "sim": {"ground"},
    "learn": {"ground", "sim"},
    "hdl": {"ground"},
    "tb": {"ground", "sim", "hdl"},
    "boards": {"ground", "sim", "hdl"},
}


def floor_of(module: str) -> str | None:
    """Return the floor of a project module (``None`` for a third-party one)."""
    top = module.split(".")[0]
    if top == "adcforge":
        if any(module == m or module.startswith(m + ".") for m in TOP):
            return "top"
        if module == "adcforge" or any(module == m or module.startswith(m + ".")
                                        for m in GROUND - {"adcforge"}):
            return "ground"
        return "unknown"
    return top if top in STAGES else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, text: str | None = None) -> list[tuple[int, str]]:
    """Return ``(line, module)`` for every import in a file (or in ``text`` as if it were that
    file), relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if text is None else text, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            if node.module is None or node.level and not node.module:
                # ``from . import x``: x may be a submodule
                found += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, mod))
    return found


def project_files():
    for pkg in ("adcforge",) + STAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if not path.name.startswith("test_"):
                yield path


@pytest.mark.parametrize("path", list(project_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_downwards_only(path):
    floor = floor_of(module_name(path))
    assert floor != "unknown", f"{path}: module of no floor; add it to this test's floors"
    if floor == "top":
        return
    allowed = ALLOWED[floor] | {floor}
    bad = [f"line {line}: {mod} ({floor_of(mod)})" for line, mod in imports_of(path)
           if floor_of(mod) is not None and floor_of(mod) not in allowed]
    assert not bad, f"{path.relative_to(ROOT)} ({floor}) imports upwards: {'; '.join(bad)}"


def test_the_checker_sees_an_upward_import():
    probe = ROOT / "hdl" / "probe.py"  # not written: the text is parsed as if it were this file
    found = [m for _, m in imports_of(probe, "from learn.model import TaskModel\n"
                                             "def f():\n    from . import golden\n")]
    assert found == ["learn.model", "hdl.golden"]
    assert floor_of("learn.model") not in ALLOWED["hdl"] | {"hdl"}
    assert floor_of("adcforge.cli") == "top" and floor_of("adcforge.golden") == "ground"
