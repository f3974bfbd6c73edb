"""The floors of the package, held by its folders.

README's "Layers" table is where the floors are written down, lowest first: which
packages and modules each floor holds, and the few imports allowed between two
rooms of one floor (one way each). These tests read that table and walk every
import in ``src/`` with ``ast`` (inside functions and ``TYPE_CHECKING`` blocks too:
an import a type checker follows still ties the two modules together), and fail on

- a package or top-level module that sits on no floor,
- an import from a floor to one above it, or across a floor not allowed in the table,
- a circle between modules, or between packages,
- a module of the Lambda zip (``packaging.LAMBDA_PACKAGES`` and all they import)
  importing a library the Lambda must not carry (``LAMBDA_FORBIDDEN``),
- a module over ``MAX_LINES`` lines that is not one protocol object.

The checks are plain functions over a module graph, so the last tests feed them a
made-up graph and a made-up source tree to show each one fails when it should.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import alexa_doorbell
from alexa_doorbell.packaging import LAMBDA_PACKAGES

PACKAGE = "alexa_doorbell"
SRC = Path(alexa_doorbell.__file__).resolve().parent
README = SRC.parents[1] / "README.md"

# Never on the Lambda path (DESIGN.md: stdlib, boto3/botocore and urllib3 only): the
# seven the issue names, and every other library of the camera side and the local cloud.
LAMBDA_FORBIDDEN = frozenset(
    {"pydantic", "pydantic_settings", "aiortc", "aioice", "av", "starlette", "uvicorn"}
    | {"typer", "rich", "httpx", "websockets", "jsonschema", "numpy", "cryptography"}
    | {"aiomqtt", "gpiozero", "cv2", "sounddevice"}
)

MAX_LINES = 500
# Modules allowed past MAX_LINES, each with why. One protocol object (aiortc's rule: one
# module per protocol object, named as the spec names it) is read top to bottom as one
# thing; cutting it would scatter one state machine over several files.
ONE_PROTOCOL_OBJECT: dict[str, str] = {}


# -- the module graph ------------------------------------------------------------------
@dataclass(frozen=True)
class Import:
    """One import statement's target, as the importing module names it."""

    target: str  # a module of the package (dotted), or a library's top-level name
    line: int


@dataclass
class Graph:
    """Every module of the package and what each imports."""

    modules: dict[str, list[Import]] = field(default_factory=dict)

    def internal(self, module: str) -> list[Import]:
        return [i for i in self.modules[module] if _ours(i.target)]

    def external(self, module: str) -> list[Import]:
        return [i for i in self.modules[module] if not _ours(i.target)]


def _ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def module_name(root: Path, path: Path) -> str:
    """``root/x/y.py`` -> ``alexa_doorbell.x.y``; a package's ``__init__.py`` is the package."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> list[Import]:
    """Every import in ``source``, wherever it stands (module level, in a function, under
    ``if TYPE_CHECKING:``), and ``importlib.import_module("...")`` with a literal name.

    ``from a.b import c`` names the module ``a.b.c`` when there is one, else ``a.b``; a
    relative import is resolved against ``module``.
    """
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(_top_or_module(a.name), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join([*here, base] if base else here)
            if not _ours(base):
                found.append(Import(base.split(".")[0], node.lineno))
                continue
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
            named_only = len(subs) < len(node.names)  # names defined in base itself
            found += [Import(s, node.lineno) for s in subs]
            if named_only or not subs:
                found.append(Import(base, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(Import(_top_or_module(node.args[0].value), node.lineno))
    return sorted(found, key=lambda i: i.line)  # ast.walk goes breadth first


def _top_or_module(name: str) -> str:
    return name if _ours(name) else name.split(".")[0]


def import_graph(root: Path) -> Graph:
    files = {
        module_name(root, p): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts
    }
    known = set(files)
    graph = Graph()
    for name, path in files.items():
        source = path.read_text(encoding="utf-8")
        graph.modules[name] = imports_of(source, name, path.name == "__init__.py", known)
    return graph


def unit_of(module: str) -> str:
    """The room a module lives in: its top-level package or module (``""``: the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# -- the floors ------------------------------------------------------------------------
@dataclass(frozen=True)
class Floors:
    """Rooms per floor, lowest first, and the one-way imports allowed within a floor."""

    floors: tuple[frozenset[str], ...]
    across: frozenset[tuple[str, str]]  # (importer, imported), both on one floor

    def floor_of(self, unit: str) -> int | None:
        if unit == "":  # the package's own __init__: beneath everything
            return -1
        for number, rooms in enumerate(self.floors):
            if unit in rooms:
                return number
        return None


_ROW = re.compile(r"^\|\s*(\d+)\s*\|(.*?)\|(.*?)\|\s*$")
_NAME = re.compile(r"`([a-z_]+)(?:/|\.py)`")
_ACROSS = re.compile(r"`([a-z_]+)(?:/|\.py)`\s*→\s*`([a-z_]+)(?:/|\.py)`")


def floors_from_readme(text: str) -> Floors:
    """The table under README's ``### Layers``: ``| floor | rooms | within the floor |``.

    Rooms are the backquoted ``name/`` and ``name.py`` of the second column; allowed
    imports within the floor the ``a`` → ``b`` pairs of the third.
    """
    _, found, rest = text.partition("\n### Layers\n")
    assert found, "README.md has no '### Layers' section"
    floors: list[frozenset[str]] = []
    across: set[tuple[str, str]] = set()
    for line in rest.splitlines():
        if line.startswith("#"):
            break
        row = _ROW.match(line)
        if not row:
            continue
        assert int(row[1]) == len(floors), f"README layers: floor {row[1]} out of order"
        floors.append(frozenset(_NAME.findall(row[2])))
        across |= set(_ACROSS.findall(row[3]))
    assert floors, "README.md's Layers section has no table rows"
    return Floors(tuple(floors), frozenset(across))


def units_without_floor(root: Path, floors: Floors) -> list[str]:
    units = {p.name.removesuffix(".py") for p in root.iterdir() if p.name != "__init__.py"}
    units = {
        u for u in units if (root / u / "__init__.py").is_file() or (root / f"{u}.py").is_file()
    }
    return sorted(u for u in units if floors.floor_of(u) is None)


def floor_violations(graph: Graph, floors: Floors) -> list[str]:
    """Each import that runs upward, or across a floor without the table's leave."""
    out = []
    for module in sorted(graph.modules):
        src = unit_of(module)
        for imp in graph.internal(module):
            dst = unit_of(imp.target)
            if src == dst:
                continue
            a, b = floors.floor_of(src), floors.floor_of(dst)
            where = f"{module} imports {imp.target} (line {imp.line})"
            if a is None or b is None:
                out.append(f"{where}: {src if a is None else dst!r} is on no floor")
            elif b > a:
                out.append(f"{where}: upward, floor {a} ({src}) -> floor {b} ({dst})")
            elif b == a and (src, dst) not in floors.across:
                out.append(f"{where}: within floor {a}, {src} -> {dst} is not allowed")
    return out


def circles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (or a node on itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:  # Tarjan's, iterative (the graph is a few hundred nodes)
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    if len(comp) > 1 or node in edges.get(node, ()):
                        found.append(sorted(comp))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def module_edges(graph: Graph) -> dict[str, set[str]]:
    return {m: {i.target for i in graph.internal(m) if i.target != m} for m in graph.modules}


def unit_edges(graph: Graph) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        src = unit_of(module)
        edges.setdefault(src, set())
        edges[src] |= {unit_of(i.target) for i in graph.internal(module)} - {src}
    return edges


def lambda_violations(
    graph: Graph, lambda_packages: Iterable[str], forbidden: frozenset[str]
) -> list[str]:
    """Forbidden libraries imported anywhere on the Lambda path, with the path there."""
    roots = [m for m in graph.modules if unit_of(m) in set(lambda_packages)]
    via: dict[str, str | None] = dict.fromkeys(roots)
    todo = list(roots)
    while todo:
        module = todo.pop()
        for imp in graph.internal(module):
            if imp.target in graph.modules and imp.target not in via:
                via[imp.target] = module
                todo.append(imp.target)
    out = []
    for module in sorted(via):
        for imp in graph.external(module):
            if imp.target in forbidden:
                chain = [module]
                while (parent := via[chain[-1]]) is not None:
                    chain.append(parent)
                path = " <- ".join(chain)
                out.append(f"{path} imports {imp.target} (line {imp.line}): off the Lambda path")
    return out


def oversized(root: Path, limit: int, allowed: Mapping[str, str]) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit and rel not in allowed:
            out.append(f"{rel}: {lines} lines, over {limit}: split it into modules with one job")
        elif lines <= limit and rel in allowed:
            out.append(f"{rel}: {lines} lines now: take it off ONE_PROTOCOL_OBJECT")
    out += [
        f"{rel}: in ONE_PROTOCOL_OBJECT but gone" for rel in allowed if not (root / rel).is_file()
    ]
    return out


# -- the package itself ------------------------------------------------------------------
@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(SRC)


@pytest.fixture(scope="module")
def floors() -> Floors:
    return floors_from_readme(README.read_text(encoding="utf-8"))


def test_every_package_and_module_is_on_a_floor(floors: Floors) -> None:
    assert units_without_floor(SRC, floors) == [], "add them to README's Layers table"
    rooms = [room for rooms in floors.floors for room in rooms]
    assert len(rooms) == len(set(rooms)), "a room on two floors"
    gone = [r for r in rooms if not ((SRC / r).is_dir() or (SRC / f"{r}.py").is_file())]
    assert gone == [], "README's Layers table names rooms that do not exist"


def test_imports_run_downward(graph: Graph, floors: Floors) -> None:
    assert floor_violations(graph, floors) == []


def test_no_circle_between_modules_or_packages(graph: Graph) -> None:
    assert circles(module_edges(graph)) == []
    assert circles(unit_edges(graph)) == []


def test_the_lambda_path_carries_no_heavy_library(graph: Graph) -> None:
    assert lambda_violations(graph, LAMBDA_PACKAGES, LAMBDA_FORBIDDEN) == []


def test_no_module_over_500_lines_unless_one_protocol_object() -> None:
    assert oversized(SRC, MAX_LINES, ONE_PROTOCOL_OBJECT) == []


def test_the_walk_sees_the_package_as_python_does(graph: Graph) -> None:
    """A guard on the walker itself: imports it must find in the real tree."""
    handler = {i.target for i in graph.internal("alexa_doorbell.skill.handler")}
    assert "alexa_doorbell.skill.app" in handler  # imported inside a function
    assert "alexa_doorbell.lambda_config" in handler  # under TYPE_CHECKING
    assert "aiortc" in {i.target for i in graph.external("alexa_doorbell.camera.rtc_hooks")}
    assert "av" in {i.target for i in graph.external("alexa_doorbell.camera.jpeg")}


# -- the checks fail when they should ----------------------------------------------------
FAKE = Floors(
    floors=(frozenset({"low"}), frozenset({"mid", "side"}), frozenset({"top"})),
    across=frozenset({("side", "mid")}),
)


def _fake(edges: dict[str, list[str]]) -> Graph:
    return Graph({m: [Import(t, 1) for t in targets] for m, targets in edges.items()})


def test_an_upward_import_and_one_across_a_floor_are_caught() -> None:
    graph = _fake(
        {
            "alexa_doorbell.low.a": ["alexa_doorbell.top.z", "json"],
            "alexa_doorbell.mid.b": ["alexa_doorbell.side.c", "alexa_doorbell.low.a"],
            "alexa_doorbell.side.c": ["alexa_doorbell.mid.b"],  # allowed one way
            "alexa_doorbell.top.z": ["alexa_doorbell.mid.b", "alexa_doorbell.nowhere"],
        }
    )
    assert floor_violations(graph, FAKE) == [
        "alexa_doorbell.low.a imports alexa_doorbell.top.z (line 1): upward, "
        "floor 0 (low) -> floor 2 (top)",
        "alexa_doorbell.mid.b imports alexa_doorbell.side.c (line 1): within floor 1, "
        "mid -> side is not allowed",
        "alexa_doorbell.top.z imports alexa_doorbell.nowhere (line 1): 'nowhere' is on no floor",
    ]


def test_circles_between_modules_and_between_packages_are_caught() -> None:
    graph = _fake(
        {
            "alexa_doorbell.mid.a": ["alexa_doorbell.mid.b"],
            "alexa_doorbell.mid.b": ["alexa_doorbell.mid.a"],  # modules: a <-> b
            "alexa_doorbell.mid.c": ["alexa_doorbell.side.d"],
            "alexa_doorbell.side.d": ["alexa_doorbell.low.e"],
            "alexa_doorbell.side.f": ["alexa_doorbell.mid.g"],  # packages: mid <-> side
            "alexa_doorbell.mid.g": [],
            "alexa_doorbell.low.e": [],
        }
    )
    assert circles(module_edges(graph)) == [["alexa_doorbell.mid.a", "alexa_doorbell.mid.b"]]
    assert circles(unit_edges(graph)) == [["mid", "side"]]
    assert circles({"x": ["x"]}) == [["x"]]
    assert circles({"x": ["y"], "y": []}) == []


def test_a_heavy_library_reached_through_the_package_is_caught() -> None:
    graph = _fake(
        {
            "alexa_doorbell.skill.handler": ["alexa_doorbell.store.base", "json", "boto3"],
            "alexa_doorbell.store.base": ["alexa_doorbell.store.extra"],
            "alexa_doorbell.store.extra": ["pydantic"],
            "alexa_doorbell.camera.agent": ["aiortc"],  # off the Lambda path: fine
        }
    )
    assert lambda_violations(graph, ["skill"], LAMBDA_FORBIDDEN) == [
        "alexa_doorbell.store.extra <- alexa_doorbell.store.base <- "
        "alexa_doorbell.skill.handler imports pydantic (line 1): off the Lambda path"
    ]


def test_the_walker_finds_lazy_type_checking_relative_and_dynamic_imports(
    tmp_path: Path,
) -> None:
    root = tmp_path / PACKAGE
    (root / "low").mkdir(parents=True)
    (root / "top").mkdir()
    for init in (root, root / "low", root / "top"):
        (init / "__init__.py").write_text("")
    (root / "low" / "base.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from alexa_doorbell.top.view import View\n"
        "def later():\n"
        "    import alexa_doorbell.top.view\n"
        "    from . import sibling\n"
        "    from ..top import view, NAME\n"
        "    import importlib\n"
        "    importlib.import_module('alexa_doorbell.top')\n"
        "    import starlette.responses\n"
    )
    (root / "low" / "sibling.py").write_text("")
    (root / "top" / "view.py").write_text("class View: ...\n")
    graph = import_graph(root)
    assert set(graph.modules) == {
        "alexa_doorbell",
        "alexa_doorbell.low",
        "alexa_doorbell.low.base",
        "alexa_doorbell.low.sibling",
        "alexa_doorbell.top",
        "alexa_doorbell.top.view",
    }
    assert [(i.target, i.line) for i in graph.modules["alexa_doorbell.low.base"]] == [
        ("typing", 1),
        ("alexa_doorbell.top.view", 3),
        ("alexa_doorbell.top.view", 5),
        ("alexa_doorbell.low.sibling", 6),
        ("alexa_doorbell.top.view", 7),
        ("alexa_doorbell.top", 7),
        ("importlib", 8),
        ("alexa_doorbell.top", 9),
        ("starlette", 10),
    ]
    two = Floors((frozenset({"low"}), frozenset({"top"})), frozenset())
    assert len(floor_violations(graph, two)) == 5
    assert units_without_floor(root, Floors((frozenset({"low"}),), frozenset())) == ["top"]


def test_the_readme_table_is_read_as_floors() -> None:
    text = (
        "intro\n\n### Layers\n\n| floor | rooms | within the floor |\n|---|---|---|\n"
        "| 0 | `alexa/` | |\n"
        "| 1 | the skill `skill/`, `lambda_config/` and `debounce.py` "
        "| `skill/` → `lambda_config/` (why) |\n"
        "\n### Next\n| 2 | `cli.py` | |\n"
    )
    assert floors_from_readme(text) == Floors(
        (frozenset({"alexa"}), frozenset({"skill", "lambda_config", "debounce"})),
        frozenset({("skill", "lambda_config")}),
    )


def test_an_oversized_module_and_a_stale_allowance_are_caught(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text("x = 1\n" * 501)
    (tmp_path / "ok.py").write_text("x = 1\n" * 500)
    (tmp_path / "small.py").write_text("x = 1\n")
    assert oversized(tmp_path, 500, {"small.py": "was big", "gone.py": "removed"}) == [
        "big.py: 501 lines, over 500: split it into modules with one job",
        "small.py: 1 lines now: take it off ONE_PROTOCOL_OBJECT",
        "gone.py: in ONE_PROTOCOL_OBJECT but gone",
    ]
