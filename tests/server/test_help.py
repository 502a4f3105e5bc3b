"""Help where users look, checked on the real server for every node the pack registers (new ones included):
tooltips, categories, help pages the frontend fetches, the frontend extension, and the template browser."""

import json
import urllib.request
from pathlib import Path

import pytest
from build_workflows import WORKFLOWS_DIR
from comfy_env import PACK_NAME

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parents[2]


def fetch(server, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


@pytest.fixture(scope="module")
def pack_nodes(object_info) -> dict[str, dict]:
    nodes = {name: info for name, info in object_info.items() if info["python_module"].split(".")[1:2] == [PACK_NAME]}
    assert len(nodes) >= 9, sorted(nodes)
    return nodes


def help_url(info: dict) -> str:
    """The URL the frontend (NodeHelpService) fetches a custom node's help page from, for English."""
    pack = info["python_module"].split(".")[1].split("@")[0]
    return f"/extensions/{pack}/docs/{info['name']}.md"


def test_every_input_of_every_node_has_a_tooltip(pack_nodes):
    missing = [
        f"{name}.{input_name}"
        for name, info in pack_nodes.items()
        for section in ("required", "optional")
        for input_name, spec in info["input"].get(section, {}).items()
        if not (len(spec) > 1 and spec[1].get("tooltip"))
    ]
    assert not missing, f"inputs without a tooltip: {missing}"


def test_every_node_is_named_described_and_under_multiid(pack_nodes):
    for name, info in pack_nodes.items():
        assert name.startswith("MultiID_"), name
        assert info["category"].startswith("MultiID/"), (name, info["category"])
        assert info["description"] and info["display_name"] != name, name


def test_every_node_has_a_help_page_the_frontend_finds(server, pack_nodes):
    for name, info in pack_nodes.items():
        status, body = fetch(server, help_url(info))
        assert status == 200, f"{name}: no help page at web/docs/{name}.md"
        text = body.decode()
        assert text.startswith(f"# {info['display_name']}\n"), f"{name}: the page should start with its display name"
    pages = {p.stem for p in (ROOT / "web" / "docs").glob("*.md")}
    assert pages == set(pack_nodes), f"help pages without a node: {pages - set(pack_nodes)}"


def test_frontend_extension_is_served(server):
    assert f"/extensions/{PACK_NAME}/js/identity_similarity.js" in server.get("/extensions")


def test_workflows_appear_in_the_template_browser(server):
    templates = server.get("/workflow_templates")
    assert sorted(templates[PACK_NAME]) == sorted(p.stem for p in WORKFLOWS_DIR.glob("*.json"))
    for name in templates[PACK_NAME]:
        status, body = fetch(server, f"/api/workflow_templates/{PACK_NAME}/{name}.json")
        assert status == 200 and json.loads(body) == json.loads((WORKFLOWS_DIR / f"{name}.json").read_text())
        status, thumbnail = fetch(server, f"/api/workflow_templates/{PACK_NAME}/{name}.jpg")
        assert status == 200 and thumbnail[:3] == b"\xff\xd8\xff", f"workflows/{name}.jpg: no thumbnail"


def test_workflows_describe_themselves_and_their_model_files(server):
    folders = {folder["name"] for folder in server.get("/experiment/models")}  # what the editor checks against
    for path in WORKFLOWS_DIR.glob("*.json"):
        workflow = json.loads(path.read_text())
        assert workflow["extra"]["info"]["description"], path.name
        notes = [n for n in workflow["nodes"] if n["type"] == "MarkdownNote"]
        assert len(notes) == 1 and "python multiid.py models check" in notes[0]["widgets_values"][0]
        assert workflow["models"], path.name
        for model in workflow["models"]:
            assert model["url"].startswith("https://") and model["url"].endswith(Path(model["name"]).name), model
            assert model["directory"] in folders, model
