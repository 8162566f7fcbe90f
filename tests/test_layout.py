"""The layout of the project and the directions its imports may take (docs/architecture.md).

Every .py file under engines/, calibration/ and monitor/ is parsed with ``ast``; nothing is imported,
so this runs offline in a second or two. Imports are collected at every depth (module level, inside
functions, under ``if``/``try``) and each is mapped to the deepest project module it names: for
``from a.b import c`` that is ``a.b.c`` when that module exists, else ``a.b``.

Rules, one test each:
  a. rank order: a module may import its own stage, or stages of a strictly lower rank (LAYERS);
  b. no import cycles between project modules, function-level imports included;
  c. a function-level import of a project module says why on its first line: ``# lazy: <reason>``;
  d. no function longer than MAX_FUNCTION_LINES, numba kernels (``@njit``/``@jit``) excepted;
  e. monitor/ holds only ROOT_MODULES; everything else lives in a stage folder (ranked in LAYERS) whose
     ``__init__.py`` docstring says what the stage may import ("May import: …"); subpackages below a
     stage (monitor.measures.kernels, monitor.lab.cnn) have an ``__init__.py`` with a docstring.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engines", "calibration", "monitor")

# The architecture, lowest layer first: (rank, stage, what the stage covers; a folder ends in "/").
# A module may import modules of its own stage or of stages with a strictly lower rank. Two stages of
# the same rank (capture, transport) are independent of each other.
LAYERS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (0, "engines", ("engines/",)),  # landmark runners, model assets, native log levels, util, error root
    (1, "calibration", ("calibration/",)),  # iris scale, baselines
    (2, "monitor", ("monitor/__init__.py", "monitor/errors.py")),  # version, DISCLAIMER, errors
    (3, "protocol", ("monitor/protocol/",)),
    (4, "measures", ("monitor/measures/",)),
    (5, "cnn", ("monitor/cnn/",)),
    (6, "capture", ("monitor/capture/",)),
    (6, "transport", ("monitor/transport/",)),
    (7, "store", ("monitor/store/",)),
    (8, "engine", ("monitor/engine/",)),
    (9, "session", ("monitor/session/",)),
    (10, "report", ("monitor/report/",)),
    (11, "app", ("monitor/app/",)),
    (12, "lab", ("monitor/lab/",)),
    (13, "cli", ("monitor/cli/", "monitor/__main__.py")),
)

# The only modules that live directly in monitor/; everything else belongs to a stage folder.
ROOT_MODULES = frozenset({"__init__.py", "__main__.py", "errors.py"})
# Each stage folder's __init__ docstring states its allowed imports with these words.
STAGE_DOC_PHRASE = "May import"
# Functions longer than this (def line to last line, decorators excluded) are to be split.
MAX_FUNCTION_LINES = 100
# Decorators (bare, called, or as an attribute such as numba.njit) that exempt a kernel from the limit.
KERNEL_DECORATORS = frozenset({"njit", "jit"})
# The comment a function-level project import carries on its first line, followed by its reason.
LAZY_COMMENT = re.compile(r"(?:^|\s)# lazy:\s*\S")


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    imported: str  # the deepest project module the statement names
    path: str  # file of the importer, relative to ROOT
    line: int
    in_function: bool
    lazy_comment: bool

    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Function:
    name: str  # qualified: Class.method, outer.<locals>.inner
    path: str
    line: int
    length: int
    kernel: bool


@dataclass(repr=False)
class Project:
    modules: dict[str, str] = field(default_factory=dict)  # dotted name -> path relative to ROOT
    packages: set[str] = field(default_factory=set)  # dotted names of __init__.py modules
    imports: list[Import] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Project({len(self.modules)} modules, {len(self.imports)} imports, {len(self.functions)} functions)"

    def edges(self) -> dict[str, set[str]]:
        graph: dict[str, set[str]] = {m: set() for m in self.modules}
        for imp in self.imports:
            if imp.imported != imp.importer:
                graph[imp.importer].add(imp.imported)
        return graph


def module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def stage_of(path: str) -> tuple[int, str] | None:
    """(rank, stage) of a file (path relative to ROOT), or None when LAYERS does not cover it."""
    best: tuple[int, tuple[int, str]] | None = None
    for rank, stage, covers in LAYERS:
        for c in covers:
            if (path.startswith(c) if c.endswith("/") else path == c) and (best is None or len(c) > best[0]):
                best = (len(c), (rank, stage))
    return best[1] if best else None


def _deepest(name: str, modules: dict[str, str]) -> str | None:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def _comment(line: str, col: int) -> str:
    """The comment on an import's first line (an import statement holds no string literals)."""
    hash_at = line.find("#", col)
    return line[hash_at:] if hash_at >= 0 else ""


def _is_kernel(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for dec in fn.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Name) and target.id in KERNEL_DECORATORS:
            return True
        if isinstance(target, ast.Attribute) and target.attr in KERNEL_DECORATORS:
            return True
    return False


def _child_blocks(node: ast.stmt):
    """The statement lists inside a statement: bodies of if/for/while/with/try/match, handlers, cases."""
    for name in ("body", "orelse", "finalbody"):
        block = getattr(node, name, None)
        if isinstance(block, list):
            yield block
    for handler in getattr(node, "handlers", ()):
        yield handler.body
    for case in getattr(node, "cases", ()):
        yield case.body


class _ModuleScan:
    """Collects one module's imports and functions, walking statements only (imports and defs are
    statements, so expressions need not be visited)."""

    def __init__(self, project: Project, module: str, path: str, lines: list[str]) -> None:
        self.project = project
        self.module = module
        self.path = path
        self.lines = lines
        package = module if module in project.packages else module.rpartition(".")[0]
        self.package_parts = package.split(".") if package else []

    def block(self, stmts: list[ast.stmt], scope: tuple[str, ...], in_function: bool) -> None:
        for node in stmts:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.project.functions.append(Function(
                    ".".join((*scope, node.name)), self.path, node.lineno,
                    node.end_lineno - node.lineno + 1, _is_kernel(node)))
                self.block(node.body, (*scope, node.name, "<locals>"), True)
            elif isinstance(node, ast.ClassDef):
                self.block(node.body, (*scope, node.name), in_function)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in PACKAGES:
                        self.add(node, _deepest(alias.name, self.project.modules), in_function)
            elif isinstance(node, ast.ImportFrom):
                self.import_from(node, in_function)
            else:
                for child in _child_blocks(node):
                    self.block(child, scope, in_function)

    def import_from(self, node: ast.ImportFrom, in_function: bool) -> None:
        if node.level:
            up = node.level - 1
            base_parts = self.package_parts[: len(self.package_parts) - up] if up else self.package_parts
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        if base.split(".")[0] not in PACKAGES:
            return
        seen: set[str] = set()
        for alias in node.names:
            full = f"{base}.{alias.name}"  # `from a.b import c`: the module a.b.c if there is one, else a.b
            if alias.name == "*" or full not in self.project.modules:
                full = base
            target = _deepest(full, self.project.modules)
            if target is not None and target not in seen:
                seen.add(target)
                self.add(node, target, in_function)

    def add(self, node: ast.stmt, name: str | None, in_function: bool) -> None:
        if name is None:
            return
        comment = _comment(self.lines[node.lineno - 1], node.col_offset)
        self.project.imports.append(Import(
            self.module, name, self.path, node.lineno, in_function, bool(LAZY_COMMENT.search(comment))))


@lru_cache(maxsize=1)
def project() -> Project:
    files = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts)
    proj = Project()
    for f in files:
        rel = f.relative_to(ROOT)
        name = module_name(rel)
        proj.modules[name] = rel.as_posix()
        if f.name == "__init__.py":
            proj.packages.add(name)
    # namespace folders (no __init__.py) still resolve: engines.facemesh.pipeline is a module either way
    for name, rel in proj.modules.items():
        source = (ROOT / rel).read_text(encoding="utf-8")
        tree = ast.parse(source, filename=rel)
        _ModuleScan(proj, name, rel, source.splitlines()).block(tree.body, (), False)
    proj.imports.sort(key=lambda i: (i.path, i.line, i.imported))  # violations are listed in file order
    proj.functions.sort(key=lambda f: (f.path, f.line))
    return proj


@pytest.fixture(scope="module")
def proj() -> Project:
    return project()


def _check(title: str, violations: list[str], hint: str) -> None:
    """Fail with every violation listed, one per line, and what to do about them."""
    if violations:
        pytest.fail(f"{title} ({len(violations)}):\n  " + "\n  ".join(violations) + f"\n{hint}", pytrace=False)


def test_project_is_found(proj):
    assert len(proj.modules) > 50 and "monitor.errors" in proj.modules, (
        f"parsed only {len(proj.modules)} modules under {ROOT}; is the test run from the repository?")


# a. rank order -------------------------------------------------------------------------------------

def test_imports_follow_rank_order(proj):
    violations = []
    unranked = sorted({p for p in proj.modules.values() if stage_of(p) is None})
    for imp in proj.imports:
        src = stage_of(proj.modules[imp.importer])
        dst = stage_of(proj.modules[imp.imported])
        if src is None or dst is None:
            continue  # reported as unranked below
        if src[1] == dst[1] or dst[0] < src[0]:
            continue
        why = "same rank, separate stages" if dst[0] == src[0] else "higher rank"
        violations.append(f"{imp.where()}: {imp.importer} [{src[1]} {src[0]}] → {imp.imported} "
                          f"[{dst[1]} {dst[0]}] ({why}{', in a function' if imp.in_function else ''})")
    violations += [f"{p}: not covered by LAYERS" for p in unranked]
    _check(
        "imports against the layer order", violations,
        "A stage may import only itself and stages of a strictly lower rank (LAYERS at the top of this "
        "file, docs/architecture.md). Move the imported code down to a stage both can import, or pass "
        "it in from the higher stage (a parameter or callback) instead of importing upwards.")


# b. cycles -----------------------------------------------------------------------------------------

def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the components of more than one module, or of one that imports itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1 or node in graph[node]:
                        out.append(sorted(comp))
    return sorted(out)


def _shortest_cycle(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """One shortest cycle through the component's first module, as a list that starts and ends there."""
    members = set(comp)
    start = comp[0]
    prev: dict[str, str] = {start: start}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [*reversed(path), start]
                if child not in prev:
                    prev[child] = node
                    nxt.append(child)
        frontier = nxt
    return [*comp, start]


def test_no_import_cycles(proj):
    graph = proj.edges()
    violations = []
    for comp in strongly_connected(graph):
        members = set(comp)
        edges = [f"{imp.where()}: {imp.importer} → {imp.imported}{' (in a function)' if imp.in_function else ''}"
                 for imp in proj.imports
                 if imp.importer in members and imp.imported in members and imp.importer != imp.imported]
        violations.append(f"cycle {' → '.join(_shortest_cycle(graph, comp))} ({len(comp)} modules); "
                          f"imports inside it:\n    " + "\n    ".join(edges))
    _check(
        "import cycles", violations,
        "Function-level imports count: a cycle hidden in a function is still a cycle. Break each one by "
        "moving the shared code to the lower module, or by passing what is needed as an argument.")


# c. lazy imports -----------------------------------------------------------------------------------

def test_function_level_project_imports_say_why(proj):
    violations = [f"{imp.where()}: {imp.importer} → {imp.imported}"
                  for imp in proj.imports if imp.in_function and not imp.lazy_comment]
    _check(
        "function-level imports of project modules without a '# lazy: <reason>' comment", violations,
        "Move the import to the top of the module. If it must stay in the function to defer a heavy "
        "optional dependency, say which on the import's first line, e.g. "
        "'from monitor.lab.cnn import model  # lazy: torch (train extra)'.")


# d. function length --------------------------------------------------------------------------------

def test_functions_are_short(proj):
    violations = [f"{f.path}:{f.line}: {f.name} is {f.length} lines"
                  for f in proj.functions if f.length > MAX_FUNCTION_LINES and not f.kernel]
    _check(
        f"functions longer than {MAX_FUNCTION_LINES} lines", violations,
        "Split each into named steps (helpers or a small class). Only numba kernels (@njit/@jit) are "
        "exempt, since a kernel's body is compiled as one unit.")


# e. structure --------------------------------------------------------------------------------------

def _docstring(init: Path) -> str | None:
    return ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))


def test_monitor_root_holds_only_the_package_modules():
    extra = sorted(p.name for p in (ROOT / "monitor").glob("*.py") if p.name not in ROOT_MODULES)
    _check(
        "modules directly in monitor/", [f"monitor/{n}" for n in extra],
        f"monitor/ holds only {', '.join(sorted(ROOT_MODULES))}; move each module into the stage folder "
        "that owns it (see LAYERS).")


def _stage_folders() -> list[Path]:
    return sorted(d for d in (ROOT / "monitor").iterdir()
                  if d.is_dir() and d.name != "__pycache__" and any(d.rglob("*.py")))


def test_stage_folders_are_ranked_packages_that_state_their_imports():
    violations = []
    layer_folders = {c for _, _, covers in LAYERS for c in covers if c.endswith("/")}
    for d in _stage_folders():
        rel = f"monitor/{d.name}/"
        init = d / "__init__.py"
        if rel not in layer_folders:
            violations.append(f"{rel}: a stage folder missing from LAYERS; give it a rank")
        if not init.exists():
            violations.append(f"{rel}__init__.py: missing; a stage folder is a package")
            continue
        doc = _docstring(init)
        if not doc:
            violations.append(f"{rel}__init__.py: no docstring; say what the stage owns and "
                              f"'{STAGE_DOC_PHRASE}: …'")
        elif STAGE_DOC_PHRASE not in doc:
            violations.append(f"{rel}__init__.py: docstring lacks '{STAGE_DOC_PHRASE}: …' "
                              f"(the stages it may import, as in LAYERS)")
    for folder in sorted(layer_folders):
        if not (ROOT / folder).is_dir():
            violations.append(f"{folder}: named in LAYERS but not in the tree; update LAYERS")
    _check("stage folder problems", violations,
                                   "Each folder under monitor/ is a stage: a package with a rank in LAYERS "
                                   "and a docstring that says what it owns and what it may import.")


def test_subpackages_have_docstrings():
    """Folders below a stage (monitor.measures.kernels, monitor.lab.cnn) are packages that say what they own.

    They inherit their stage's allowed imports, so they need no 'May import' line of their own.
    """
    violations = []
    for stage in _stage_folders():
        for d in sorted(p for p in stage.rglob("*") if p.is_dir() and p.name != "__pycache__"):
            if not any(d.glob("*.py")):
                continue
            init = d / "__init__.py"
            rel = d.relative_to(ROOT).as_posix()
            if not init.exists():
                violations.append(f"{rel}/__init__.py: missing")
            elif not _docstring(init):
                violations.append(f"{rel}/__init__.py: no docstring saying what the subpackage owns")
    _check("subpackage problems", violations,
                                   "Add an __init__.py with a docstring to each subpackage under a stage.")
