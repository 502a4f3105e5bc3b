"""docs/compatibility.md keeps in step with the ComfyUI symbols the pack's code uses, and each still exists.

The pack's Python files are read with `ast`: every import of a ComfyUI module (comfy, comfy_api, folder_paths,
node_helpers ...) and every attribute chain on a name such an import binds (`mm.get_torch_device`,
`io.Combo.Input`) is a symbol. The doc lists them in its first table, one row each; its second table lists,
by hand, methods and attributes of ComfyUI objects the pack reaches through values (`model.clone()`), and the
test checks that each of those names is still read in the file the row names. Every listed symbol must resolve
in the ComfyUI tree the tests run against (COMFYUI_PATH, or .comfyui/ComfyUI), imported in a subprocess so
this test leaves no ComfyUI state behind.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from environment import comfyui_root

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "compatibility.md"
SCANNED = ("*.py", "nodes/**/*.py", "multiid_tools/**/*.py", "multiid_core/**/*.py")
COMFY_MODULES = {
    "app",
    "comfy",
    "comfy_api",
    "comfy_api_nodes",
    "comfy_config",
    "comfy_execution",
    "comfy_extras",
    "execution",
    "folder_paths",
    "latent_preview",
    "node_helpers",
    "nodes",
    "server",
}
SYMBOLS_HEADING = "## Symbols the code names"
MEMBERS_HEADING = "## Methods and attributes of ComfyUI objects"
MIRRORS_HEADING = "## Code that mirrors ComfyUI's"
MIRROR_MARK = re.compile(r"^\s*# Mirrors ([\w.]+) \(ComfyUI (\d+\.\d+\.\d+)\)\.$")
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|([^|]*)\|")


def pack_files() -> list[Path]:
    files = {p for pattern in SCANNED for p in ROOT.glob(pattern) if "__pycache__" not in p.parts}
    return sorted(files)


def _chain(node: ast.expr) -> list[str] | None:
    """`a.b.c` -> ["a", "b", "c"]; None when the chain does not start at a plain name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def used_symbols() -> dict[str, set[str]]:
    """symbol -> the pack files (relative paths) that use it, from imports and attribute chains."""
    found: dict[str, set[str]] = {}
    for path in pack_files():
        where = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(), filename=where)
        bound: dict[str, str] = {}  # local name -> the ComfyUI module or object it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in COMFY_MODULES:
                        found.setdefault(alias.name, set()).add(where)
                        if alias.asname:
                            bound[alias.asname] = alias.name
                        else:
                            top = alias.name.split(".")[0]
                            bound[top] = top
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] in COMFY_MODULES:
                    for alias in node.names:
                        symbol = f"{node.module}.{alias.name}"
                        found.setdefault(symbol, set()).add(where)
                        bound[alias.asname or alias.name] = symbol
        inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and id(node) not in inner:
                parts = _chain(node)
                if parts and parts[0] in bound:
                    symbol = ".".join([bound[parts[0]], *parts[1:]])
                    found.setdefault(symbol, set()).add(where)
        # `import comfy.sd` binds `comfy`; its bare chains (comfy.sd.CLIP) are listed, the package itself is not.
        found.pop("comfy", None)
    return found


def attributes_named(path: Path) -> set[str]:
    """The attribute names a file reads or sets (`x.name`, `getattr(x, "name")`) or a class of it overrides."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                names.add(node.args[1].value)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
                elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                    targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                    names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def doc_rows() -> dict[str, dict[str, tuple[set[str], int]]]:
    """heading -> symbol -> (files in its 'Used in' cell, line number), for the doc's two tables."""
    tables: dict[str, dict[str, tuple[set[str], int]]] = {SYMBOLS_HEADING: {}, MEMBERS_HEADING: {}, MIRRORS_HEADING: {}}
    current = None
    for number, line in enumerate(DOC.read_text().splitlines(), 1):
        if line.startswith("## "):
            current = line.strip() if line.strip() in tables else None
            continue
        match = ROW.match(line)
        if current and match:
            symbol, used_in = match.group(1), match.group(2)
            assert symbol not in tables[current], f"docs/compatibility.md:{number}: `{symbol}` is listed twice"
            tables[current][symbol] = (set(re.findall(r"`([^`]+)`", used_in)), number)
    return tables


def expected_row(symbol: str, files: set[str]) -> str:
    used_in = ", ".join(f"`{f}`" for f in sorted(files))
    return f"| `{symbol}` | {used_in} | yes/no | ? | ? |"


def test_the_doc_lists_exactly_the_symbols_the_code_uses():
    used = used_symbols()
    listed = doc_rows()[SYMBOLS_HEADING]
    assert listed, f"docs/compatibility.md has no rows under '{SYMBOLS_HEADING}'"
    assert used, "no ComfyUI symbol found in the pack's code: is the scan still pointed at nodes/?"
    problems = []
    for symbol in sorted(set(used) - set(listed)):
        problems.append(f"add to docs/compatibility.md ({SYMBOLS_HEADING}):\n    {expected_row(symbol, used[symbol])}")
    for symbol in sorted(set(listed) - set(used)):
        problems.append(f"remove from docs/compatibility.md (line {listed[symbol][1]}, no longer used): `{symbol}`")
    for symbol in sorted(set(listed) & set(used)):
        files, number = listed[symbol]
        if files != used[symbol]:
            cell, says = (", ".join(f"`{f}`" for f in sorted(group)) for group in (used[symbol], files))
            problems.append(f"docs/compatibility.md line {number}: set 'Used in' of `{symbol}` to {cell} (not {says})")
    assert not problems, "\n".join(problems)


def test_listed_methods_and_attributes_are_still_read_where_the_doc_says():
    listed = doc_rows()[MEMBERS_HEADING]
    assert listed, f"docs/compatibility.md has no rows under '{MEMBERS_HEADING}'"
    problems = []
    for symbol, (files, number) in sorted(listed.items()):
        name = symbol.rpartition(".")[2]
        if not files:
            problems.append(f"docs/compatibility.md line {number}: `{symbol}` names no file in 'Used in'")
        for file in sorted(files):
            path = ROOT / file
            if not path.is_file() or name not in attributes_named(path):
                problems.append(
                    f"docs/compatibility.md line {number}: `{file}` no longer uses `.{name}`; remove `{file}` from "
                    f"the row of `{symbol}` (or the row, if nothing uses it)"
                )
    assert not problems, "\n".join(problems)


def mirror_marks() -> dict[str, set[str]]:
    """ComfyUI symbol -> the pack files whose code marks itself `# Mirrors <symbol> (ComfyUI <version>).`"""
    marks: dict[str, set[str]] = {}
    for path in pack_files():
        for line in path.read_text().splitlines():
            match = MIRROR_MARK.match(line)
            if match:
                marks.setdefault(match.group(1), set()).add(path.relative_to(ROOT).as_posix())
    return marks


def test_code_that_mirrors_comfyui_is_marked_and_listed():
    marks, listed = mirror_marks(), doc_rows()[MIRRORS_HEADING]
    assert marks, "no `# Mirrors ...` mark found: is the scan still pointed at nodes/?"
    listed_files = {symbol: files for symbol, (files, _) in listed.items()}
    assert listed_files == marks, (
        f"docs/compatibility.md ({MIRRORS_HEADING}) lists {listed_files}; the code marks {marks}"
    )
    loose = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in pack_files()
        for line in path.read_text().splitlines()
        if "# Mirrors" in line and not MIRROR_MARK.match(line)
    ]
    assert loose == [], "a mark must read `# Mirrors <symbol> (ComfyUI <version>).`"


RESOLVER = r"""
import ast, importlib, inspect, json, sys
root, symbols, members = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
sys.path.insert(0, root)
from comfy.cli_args import args
args.cpu = True

def resolve(symbol):
    parts = symbol.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], 1):
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif inspect.ismodule(obj):
            obj = importlib.import_module(".".join(parts[: i + 1]))
        else:
            raise AttributeError(f"{'.'.join(parts[:i])} has no attribute {part!r}")
    return obj

trees = {}

def class_node(klass):
    # The ClassDef of klass in its source file, found by its qualified name (nested classes too).
    try:
        path = inspect.getsourcefile(klass)
    except TypeError:
        return None
    if not path:
        return None
    if path not in trees:
        with open(path, encoding="utf-8") as file:
            trees[path] = ast.parse(file.read())
    body = trees[path].body
    node = None
    for name in klass.__qualname__.split("."):
        node = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == name), None)
        if node is None:
            return None
        body = node.body
    return node

def self_attributes(cls):
    names = set()
    for klass in inspect.getmro(cls):
        names |= set(getattr(klass, "__dataclass_fields__", {}))
        node = class_node(klass)
        for item in ast.walk(node) if node is not None else ():
            if isinstance(item, ast.Attribute) and isinstance(item.ctx, ast.Store):
                if isinstance(item.value, ast.Name) and item.value.id == "self":
                    names.add(item.attr)
    return names

missing = {}
for symbol in symbols:
    try:
        resolve(symbol)
    except Exception as err:
        missing[symbol] = f"{type(err).__name__}: {err}"
for symbol in members:
    owner, _, name = symbol.rpartition(".")
    try:
        cls = resolve(owner)
        if not inspect.isclass(cls):
            missing[symbol] = f"{owner} is not a class"
        elif not hasattr(cls, name) and name not in self_attributes(cls):
            missing[symbol] = f"{owner} has no method or attribute {name!r}"
    except Exception as err:
        missing[symbol] = f"{type(err).__name__}: {err}"
import comfyui_version
print(json.dumps({"version": comfyui_version.__version__, "missing": missing}))
"""


def test_every_listed_symbol_exists_in_the_comfyui_tree():
    tables = doc_rows()
    symbols, members = sorted({*tables[SYMBOLS_HEADING], *tables[MIRRORS_HEADING]}), sorted(tables[MEMBERS_HEADING])
    root = comfyui_root()
    result = subprocess.run(
        [sys.executable, "-c", RESOLVER, str(root), json.dumps(symbols), json.dumps(members)],
        capture_output=True, text=True, cwd=root, timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    lines = [
        f"`{symbol}` no longer exists in ComfyUI {answer['version']} ({root}): {why}; update the code that uses it "
        "and its row in docs/compatibility.md"
        for symbol, why in sorted(answer["missing"].items())
    ]
    assert not lines, "\n".join(lines)
