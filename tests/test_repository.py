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
