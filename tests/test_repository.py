"""Repository-wide rules: ruff clean (which includes comfy-cli's no-eval/exec checks), no unsafe loads."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_is_clean():
    result = ruff("check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_torch_load_is_weights_only():
    offenders = []
    for path in list((ROOT / "multiid_core").rglob("*.py")) + list((ROOT / "nodes").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "torch.load(" in line and "weights_only=True" not in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_dependencies_are_declared_once_for_the_registry_and_the_manager():
    """pyproject's static list (what the Registry shows) and requirements.txt (what ComfyUI Manager installs)."""
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    listed = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert declared == [line for line in listed if line]


def test_installing_the_requirements_moves_no_package_comfyui_pins():
    """pip, asked to install requirements.txt into an environment with ComfyUI's requirements, would change
    none of them (torch, numpy, transformers ...)."""
    import json

    from environment import comfyui_root, requirement_names

    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-", "-r",
         str(ROOT / "requirements.txt")],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    would_install = {item["metadata"]["name"].lower() for item in json.loads(result.stdout)["install"]}
    comfyui_owned = {name.lower() for name in requirement_names(comfyui_root() / "requirements.txt")}
    assert not would_install & comfyui_owned, would_install & comfyui_owned
    relisted = {name.lower() for name in requirement_names(ROOT / "requirements.txt")} & comfyui_owned
    assert not relisted, f"requirements.txt re-lists ComfyUI's own packages: {relisted}"


def pack_imports() -> dict[str, set[str]]:
    """module -> the pack modules it imports (at the top or inside functions), from the source."""
    import ast

    modules = {}
    for path in sorted(ROOT.glob("*.py")) + sorted(
        p for folder in PACKAGES for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts
    ):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"
        modules[name] = (path, parts[:-1])  # the package that relative imports start from
    graph: dict[str, set[str]] = {}
    for name, (path, package) in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                stem = ".".join([*base, *(node.module.split(".") if node.module else [])])
                targets = [f"{stem}.{alias.name}" for alias in node.names] + ([stem] if node.module else [])
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


PACKAGES = ("multiid_core", "multiid_tools", "nodes")


def test_no_import_cycles():
    graph = pack_imports()
    assert "multiid_core.loading" in graph and "multiid_core.errors" in graph["multiid_core.loading"]
    cycles, state = [], {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_method_code_and_tools_import_no_comfyui():
    """multiid_core and multiid_tools run with plain PyTorch; only nodes/ may import ComfyUI."""
    import ast

    comfy = {"comfy", "comfy_api", "comfy_extras", "folder_paths", "nodes", "server", "execution"}
    offenders = []
    for path in [*(ROOT / "multiid_core").rglob("*.py"), *(ROOT / "multiid_tools").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in comfy]
    assert offenders == []


def test_the_front_door_reads_the_model_catalogue_without_torch():
    """`multiid.py video` and `models check` find ComfyUI and the missing files before anything is installed: the
    modules they import (the families and their files) must not need torch."""
    probe = "import sys; sys.modules['torch'] = None; import multiid_tools.model_files, multiid_tools.video"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_core_tests_import_no_comfyui():
    """tests/core (and the test helpers it imports) run with plain PyTorch: no ComfyUI module, no ComfyUI tree.

    tests/core/conftest.py checks the same while the tests run (and keeps the T5 writers off ComfyUI's files).
    """
    import ast

    comfy = {"comfy", "comfy_api", "comfy_execution", "comfy_extras", "folder_paths", "nodes", "server", "execution"}
    comfy |= {"comfy_env", "environment"}  # the tests' helpers that start ComfyUI or locate its tree
    helpers = {p.stem: p for folder in (ROOT / "tests", ROOT / "tests" / "core") for p in folder.glob("*.py")}
    todo, seen, offenders = sorted((ROOT / "tests" / "core").glob("*.py")), set(), []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in comfy:
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
                elif top in helpers and top != "conftest":
                    todo.append(helpers[top])
    assert ROOT / "tests" / "tensors.py" in seen
    assert offenders == []


def _module_trees() -> dict:
    """relative path -> (path, parsed module) of the shipped code."""
    import ast

    files = sorted(ROOT.glob("*.py")) + sorted(p for folder in PACKAGES for p in (ROOT / folder).rglob("*.py"))
    return {
        p.relative_to(ROOT).as_posix(): (p, ast.parse(p.read_text())) for p in files if "__pycache__" not in p.parts
    }


def test_no_module_reaches_for_a_private_name_of_another():
    """A name with a leading underscore is its module's own: another module that needs it gets a public name."""
    import ast

    pack_modules = set(pack_imports())
    offenders = []
    for where, (_, tree) in _module_trees().items():
        module_aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and (node.level or (node.module or "").split(".")[0] in PACKAGES):
                        offenders.append(f"{where}: imports {alias.name}")
                    if node.level or (node.module or "").split(".")[0] in PACKAGES:
                        module_aliases.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                module_aliases |= {a.asname or a.name for a in node.names if a.name in pack_modules}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                private = node.attr.startswith("_") and not node.attr.startswith("__")
                if private and node.value.id in module_aliases:
                    offenders.append(f"{where}: reads {node.value.id}.{node.attr}")
    assert offenders == []


def test_each_room_lists_its_nodes_and_the_extension_collects_every_room():
    """Every node class in nodes/ is in its room's NODES (the folder's __init__.py, or a top-level module's own
    list), and nodes/__init__.py builds the extension's list from every room's NODES, so a new method is one room
    and one line there."""
    import ast

    def listed(tree: ast.Module) -> set[str] | None:
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "NODES" for t in targets):
                    return {ast.unparse(e) for e in node.value.elts}
        return None

    trees = _module_trees()
    rooms: dict[str, set[str]] = {}
    for where, (_, tree) in trees.items():
        parts = where.split("/")
        if parts[0] != "nodes" or where == "nodes/__init__.py":
            continue
        room = parts[1] if len(parts) > 2 else parts[1].removesuffix(".py")
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "io.ComfyNode" for b in node.bases):
                rooms.setdefault(room, set()).add(node.name)
    assert {"cogvideox", "concat_id_wan", "identity", "text", "multi_gpu"} <= set(rooms)
    for room, classes in rooms.items():
        home = f"nodes/{room}/__init__.py" if f"nodes/{room}/__init__.py" in trees else f"nodes/{room}.py"
        assert listed(trees[home][1]) == classes, f"{home}: NODES must list exactly {sorted(classes)}"
    collected = listed(trees["nodes/__init__.py"][1])
    assert collected == {f"*{room}.NODES" for room in rooms}, collected
