"""The shape of the house: every module on its floor (../shared/DESIGN.md), imports that only go
down, for real. Every import of every top-level module is parsed, those inside functions and
`if` blocks included, so no circle can hide in a function; the optional cupy and matplotlib,
which only some calls need, are the one kind of import a function may make."""
import ast
import glob
import os

from conftest import ROOT

# Floors, from the ground up. A module imports modules of its own floor or below, never above.
FLOORS = {
    "ground": ("backend", "files", "startup", "standin"),
    "math": ("autograd",),
    "fast path": ("staircase", "engine", "fast_updates", "kernels"),
    "library": ("config", "weights", "made", "optim", "data", "ancestral"),
    "run folder": ("cli", "runs", "resume"),
    "command lines": ("train", "evaluate", "sample", "bench"),
}
FLOOR = {module: level for level, modules in enumerate(FLOORS.values()) for module in modules}
COMMAND_LINES = FLOORS["command lines"]
OPTIONAL = ("cupy", "cupy_backends", "matplotlib")


def modules():
    return sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(ROOT, "*.py")))


def imports(module):
    """(imported top-level name, line, whether inside a function) of every import in the module."""
    tree = ast.parse(open(os.path.join(ROOT, module + ".py"), encoding="utf-8").read())
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name.split(".")[0], child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.append(((child.module or "").split(".")[0], child.lineno, in_function))
            visit(child, inner)
    visit(tree, False)
    return found


def project_imports(module):
    return [(name, line, inner) for name, line, inner in imports(module) if name in FLOOR or name in modules()]


def test_every_module_has_a_floor():
    assert set(modules()) <= set(FLOOR), f"place {sorted(set(modules()) - set(FLOOR))} on a floor of FLOORS"


def test_imports_only_go_down():
    upward = [f"{module}.py:{line} imports {name} ({FLOOR_NAME[FLOOR[name]]} above {FLOOR_NAME[FLOOR[module]]})"
              for module in modules() for name, line, _ in project_imports(module) if FLOOR[name] > FLOOR[module]]
    assert not upward, upward


FLOOR_NAME = dict(enumerate(FLOORS))


def test_no_command_line_imports_another():
    crossing = [f"{module}.py:{line} imports {name}" for module in COMMAND_LINES for name, line, _ in
                project_imports(module) if name in COMMAND_LINES]
    assert not crossing, crossing


def test_no_import_hides_in_a_function():
    hidden = [f"{module}.py:{line} imports {name} inside a function" for module in modules()
              for name, line, inner in imports(module) if inner and name not in OPTIONAL]
    assert not hidden, hidden


def test_the_import_graph_has_no_circle():
    graph = {module: {name for name, _, _ in project_imports(module)} for module in modules()}
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"an import circle: {' → '.join(path + [module])}"
        state[module] = "open"
        for name in sorted(graph.get(module, ())):
            visit(name, path + [module])
        state[module] = "done"
    for module in graph:
        visit(module, [])


def test_only_the_backend_imports_cupy():
    users = [module for module in modules() if module != "backend"
             and any(name in ("cupy", "cupy_backends") for name, _, _ in imports(module))]
    assert not users, users
