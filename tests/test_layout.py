"""The package's shape (issue 27): an import graph without circles, modules of one job."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "topoembed"


def _modules() -> dict:
    mods = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


def import_graph() -> dict:
    """module -> the package's modules it imports anywhere in its body (lazy imports included)."""
    mods = _modules()
    edges = {m: set() for m in mods}
    for m, f in mods.items():
        here = m.split(".") if f.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
                elif (node.module or "").startswith("topoembed"):
                    base = node.module
                else:
                    continue
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                targets = subs + ([base] if len(subs) < len(node.names) else [])
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("topoembed")]
            else:
                continue
            edges[m] |= {t for t in targets if t in mods and t != m}
    return edges


def cycles(edges: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_has_no_circles():
    edges = import_graph()
    assert "topoembed.pipeline" in edges and "topoembed.loops" in edges["topoembed.pipeline"]
    assert cycles(edges) == []


#: A module longer than this says in its docstring why it is one module ("Size (...)").
MAX_LINES = 500


def test_a_long_module_says_why_it_is_one():
    long = {}
    for name, f in _modules().items():
        n = len(f.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(f.read_text())) or ""
        if n > MAX_LINES and "Size (" not in doc:
            long[name] = n
    assert long == {}, f"modules over {MAX_LINES} lines without a 'Size (...)' reason in their docstring: {long}"


def test_a_folder_named_topoembed_where_python_starts_does_not_hide_the_package(tmp_path):
    # `git clone …/topoembed` then Python (Jupyter) started in the clone's parent: the clone is a
    # folder `topoembed` without __init__.py in the working directory. With the package at the
    # repository's top, an editable install's import hook came after it and `import topoembed`
    # gave that folder as an empty namespace package (te.tl: AttributeError); from src/ it cannot
    import subprocess
    import sys

    (tmp_path / "topoembed" / "topoembed").mkdir(parents=True)
    got = subprocess.run([sys.executable, "-c", "import topoembed as te; print(te.__file__); te.tl"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert got.returncode == 0, got.stderr[-500:]
    assert got.stdout.strip().endswith("__init__.py")
