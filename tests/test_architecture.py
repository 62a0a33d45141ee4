"""The tree shows the stages (docs/architecture.md): each package imports only itself and the stages before it,
nothing below imports the package's face (`sepspec/__init__.py`), there is no import cycle between modules
(lazy imports inside functions included), and no module imports another module's private names."""
import ast
import os

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "sepspec")
# in pipeline order; a module may import its own stage and those before it
STAGES = [("version", "diagnostics", "status", "atomic", "figures", "layers", "lazy", "targets"), ("spec",), ("graph",),
          ("rules", "checked"), ("emit",), ("data",), ("train",), ("deploy",), ("search",), ("cli",), ("__init__", "__main__")]


def modules() -> dict[str, str]:
    """module name -> file, for every module of the package."""
    out = {}
    for d, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(d, f), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                out[".".join(rel)] = os.path.join(d, f)
    return out


def stage(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return next(i for i, names in enumerate(STAGES) if top in names)


def imports(module: str, path: str, known: dict) -> list[tuple[str, list[str], int]]:
    """(imported sepspec module, names taken from it, line) for every import statement, at any depth."""
    tree = ast.parse(open(path).read())
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "sepspec"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "sepspec":
                continue
            names = [a.name for a in node.names]
            submodules = [n for n in names if f"{target}.{n}" in known]  # `from . import rundir`
            out += [(f"{target}.{n}", [], node.lineno) for n in submodules]
            rest = [n for n in names if n not in submodules]
            if rest or not submodules:
                out.append((target, rest, node.lineno))
    return out


def test_each_stage_imports_only_stages_before_it_and_no_private_names():
    known = modules()
    problems = []
    for module, path in sorted(known.items()):
        for target, names, line in imports(module, path, known):
            where = f"{os.path.relpath(path, ROOT)}:{line}"
            if target not in known:
                problems.append(f"{where}: imports {target}, which does not exist")
                continue
            if target == "sepspec" and module not in ("sepspec", "sepspec.__main__"):
                problems.append(f"{where}: imports the package's face (sepspec/__init__) from below")
            elif stage(target) > stage(module):
                problems.append(f"{where}: {module} (stage {stage(module)}) imports {target} (stage {stage(target)})")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target != module:
                problems.append(f"{where}: imports private names {private} from {target}")
    assert not problems, "\n".join(problems)


def test_no_import_cycle():
    known = modules()
    edges = {m: {t for t, _, _ in imports(m, p, known) if t in known and t != m} for m, p in known.items()}
    # importing a submodule runs its packages' __init__ first: a package's face counts as imported too
    state: dict[str, int] = {}
    cycles = []

    def visit(m, trail):
        state[m] = 1
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycles.append(" -> ".join(trail[trail.index(t):] + [t]))
            elif t not in state:
                visit(t, trail + [t])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


def test_the_walk_finds_what_it_is_looking_for(tmp_path):
    """The checks above can fail: a private name, an upward import and a cycle written into a copy are found."""
    known = modules()
    bad = tmp_path / "bad.py"
    bad.write_text("from ..train.rundir import _run_line\nfrom ..cli import main\n")
    found = imports("sepspec.spec.bad", str(bad), known)
    assert ("sepspec.train.rundir", ["_run_line"], 1) in found and ("sepspec.cli", ["main"], 2) in found
    assert stage("sepspec.cli") > stage("sepspec.spec.bad")
