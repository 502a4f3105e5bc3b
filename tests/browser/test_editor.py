"""Every workflow in workflows/ in the real graph editor: opened from the template browser, checked, shown
in a screenshot, then queued from the page and run to the end on the tiny models.

Screenshots go to test-output/screenshots/ (CI keeps them). With MULTIID_UPDATE_SCREENSHOTS=1 the test also
writes the README's docs/screenshots/<name>.png and the template thumbnails workflows/<name>.jpg.

Before queueing, the test lowers the video size, length and sampling steps through the page (as a user would
in the widgets; SHRINK) so each run takes seconds on the CPU; the graph is otherwise run exactly as loaded.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from build_workflows import WORKFLOWS_DIR
from comfy_env import PACK_NAME, error_message

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.json"))
# Widget values set through the page before queueing, by node type ("*": any node with such a widget).
SHRINK = {
    "*": {"steps": 2},  # MultiID Sampler, and the native KSampler / BasicScheduler
    "MultiID_Sampler": {"frames": 9, "width": 352, "height": 240},
    "MultiID_IdentityConditioning": {"frames": 9, "width": 352, "height": 240},
    # Wan videos at about the workflows' 832x480 proportions: masks painted for them still fit.
    "MultiID_ConcatIDWanReference": {"width": 80, "height": 48, "length": 9},
    "EmptyHunyuanLatentVideo": {"width": 80, "height": 48, "length": 9},  # the Stand-In workflows' video size
    "WanPhantomSubjectToVideo": {"width": 80, "height": 48, "length": 9},
}
UPDATE_DOCS = os.environ.get("MULTIID_UPDATE_SCREENSHOTS") == "1"
# Widgets the frontend adds next to a node's inputs; "summary" is Identity Similarity's result display.
FRONTEND_WIDGETS = {"control_after_generate", "upload", "summary"}

STORE = "(id) => document.getElementById('vue-app').__vue_app__.config.globalProperties.$pinia._s.get(id)"

OPEN_TEMPLATE = """async ([module, name]) => {
    // What the template browser does when a template is clicked.
    const api = window.comfyAPI.api.api;
    const workflow = await fetch(api.apiURL(`/workflow_templates/${module}/${name}.json`)).then((r) => r.json());
    window.multiid.missingNodes = [];
    window.multiid.missingModels = [];
    await app.loadGraphData(workflow, true, true, name, {openSource: "template"});
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));

    const graph = app.graph;
    const links = graph.links instanceof Map ? [...graph.links.values()] : Object.values(graph.links ?? {});
    const linkById = (id) => (graph.links instanceof Map ? graph.links.get(id) : graph.links?.[id]);
    const problems = [];
    for (const link of links.filter(Boolean)) {
        const origin = graph.getNodeById(link.origin_id);
        const target = graph.getNodeById(link.target_id);
        if (!origin || !target) {
            problems.push(`link ${link.id} has no node at one end`);
            continue;
        }
        const output = origin.outputs?.[link.origin_slot];
        const input = target.inputs?.[link.target_slot];
        if (!output?.links?.includes(link.id)) problems.push(`link ${link.id} is not on ${origin.type}'s output`);
        if (input?.link !== link.id) problems.push(`link ${link.id} is not on ${target.type}'s input`);
        else if (!LiteGraph.isValidConnection(output?.type, input.type))
            problems.push(`link ${link.id}: ${output?.type} into ${target.type}.${input.name} (${input.type})`);
    }
    for (const node of graph.nodes) {
        for (const input of node.inputs ?? [])
            if (input.link != null && !linkById(input.link)) problems.push(`${node.type}.${input.name}: dangling link`);
        for (const output of node.outputs ?? [])
            for (const id of output.links ?? [])
                if (!linkById(id)) problems.push(`${node.type}.${output.name}: dangling link ${id}`);
    }
    return {
        missingNodes: window.multiid.missingNodes.map((t) => (typeof t === "string" ? t : t.type)),
        missingModels: window.multiid.missingModels.map((m) => [m.directory, m.name]),
        problems,
        nodes: graph.nodes.map((n) => ({
            id: n.id,
            type: n.type,
            registered: n.type in LiteGraph.registered_node_types,
            widgets: (n.widgets ?? []).map((w) => [w.name, w.value]),
        })),
        saved: graph.serialize().nodes.map((n) => [n.id, n.widgets_values ?? []]),
    };
}"""

QUEUE = """async (shrink) => {
    // Lower the video size, length and steps for CPU time, then queue the graph as the Queue button does.
    for (const node of app.graph.nodes) {
        const values = {...shrink["*"], ...(shrink[node.type] ?? {})};
        for (const widget of node.widgets ?? []) if (widget.name in values) widget.value = values[widget.name];
    }
    const prompt = await app.graphToPrompt();
    return await window.comfyAPI.api.api.queuePrompt(0, prompt);
}"""

SUMMARIES_SHOWN = """() => app.graph.nodes
    .filter((n) => n.type === "MultiID_IdentitySimilarity")
    .every((n) => /^(OK|SWAP|BLEND): [^]*\\nIdentity similarity over/
                      .test(n.widgets.find((w) => w.name === "summary")?.value ?? "")
                  && n.imgs?.length > 0)"""


def accepted(spec: list, value) -> bool:
    """Whether the node definition (an /object_info input spec) accepts a widget value."""
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    if isinstance(kind, list) or kind == "COMBO":
        return value in (kind if isinstance(kind, list) else options.get("options", []))
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if kind == "INT" and value != int(value):
            return False
        return options.get("min", float("-inf")) <= value <= options.get("max", float("inf"))
    if kind == "BOOLEAN":
        return isinstance(value, bool)
    if kind == "STRING":
        return isinstance(value, str)
    return False


def widget_problems(loaded: dict, object_info: dict) -> list[str]:
    problems = []
    for node in loaded["nodes"]:
        info = object_info.get(node["type"])
        if info is None:
            continue  # frontend-only nodes (MarkdownNote)
        specs = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        for name, value in node["widgets"]:
            if name in FRONTEND_WIDGETS or name.startswith("$$"):  # "$$...": the editor's own (image previews)
                continue
            if name not in specs:
                problems.append(f"{node['type']}: widget {name!r} is not an input of the node")
            elif not accepted(specs[name], value):
                problems.append(f"{node['type']}.{name} = {value!r} is not accepted by {specs[name]}")
    return problems


def save_for_docs(screenshot: Path, name: str) -> None:
    from PIL import Image

    (ROOT / "docs" / "screenshots").mkdir(parents=True, exist_ok=True)
    shutil.copy(screenshot, ROOT / "docs" / "screenshots" / f"{name}.png")
    image = Image.open(screenshot).convert("RGB")
    image.thumbnail((640, 400))
    image.save(WORKFLOWS_DIR / f"{name}.jpg", quality=85)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_opens_cleanly_and_runs(page, server, object_info, screenshots, path):
    name = path.stem
    workflow = json.loads(path.read_text())
    loaded = page.evaluate(OPEN_TEMPLATE, [PACK_NAME, name])

    assert loaded["missingNodes"] == [], f"{name}: node types the editor does not know"
    assert all(n["registered"] for n in loaded["nodes"])
    assert sorted(n["id"] for n in loaded["nodes"]) == sorted(n["id"] for n in workflow["nodes"])
    assert loaded["problems"] == [], f"{name}: broken links"
    assert widget_problems(loaded, object_info) == [], f"{name}: widget values"
    # The editor keeps every widget value as written (nothing coerced or shifted).
    assert dict(map(tuple, loaded["saved"])) == {n["id"]: n.get("widgets_values", []) for n in workflow["nodes"]}
    # The missing-model prompt names exactly the listed files that are not on disk (tiny models are).
    absent = {(m["directory"], m["name"]) for m in workflow["models"]}
    absent = {(d, n) for d, n in absent if not (Path(server.base) / "models" / d / n).is_file()}
    assert {tuple(m) for m in loaded["missingModels"]} == absent

    page.wait_for_timeout(300)
    shot = screenshots / f"{name}.png"
    page.screenshot(path=str(shot))
    if UPDATE_DOCS:
        save_for_docs(shot, name)

    queued = page.evaluate(QUEUE, SHRINK)
    assert not queued.get("node_errors"), queued
    entry = server.wait(queued["prompt_id"], timeout=300)
    assert error_message(entry) is None, f"{name} failed: {error_message(entry)}\n{server.log()}"
    page.wait_for_function(SUMMARIES_SHOWN, timeout=30_000)  # the editor shows each run's scores on the node
    page.screenshot(path=str(screenshots / f"{name}_run.png"))
    assert page.page_errors == []


def test_every_node_help_page_opens_in_the_editor(page, object_info, screenshots):
    """The frontend's own help panel fetches each pack node's page (from web/docs) without falling back."""
    names = [n for n, info in object_info.items() if info["python_module"].split(".")[1:2] == [PACK_NAME]]
    for name in names:
        result = page.evaluate(
            f"""async (name) => {{
                const store = ({STORE});
                const help = store("nodeHelp");
                const tick = () => new Promise((r) => setTimeout(r, 20));
                help.closeHelp();
                await tick();
                help.openHelp(store("nodeDef").nodeDefsByName[name]);
                do await tick(); while (help.isLoading);
                return {{node: help.currentHelpNode?.name, error: help.error, html: help.renderedHelpHtml}};
            }}""",
            name,
        )
        assert result["node"] == name and result["error"] is None, f"{name}: {result['error']}"
        assert result["html"].startswith("<h1"), f"{name}: {result['html'][:200]}"


def test_help_opens_from_the_selected_node(page, screenshots):
    """What a user does: select a node, click the (i) button of the selection toolbox, read the page."""
    page.evaluate(OPEN_TEMPLATE, [PACK_NAME, "consisid_single_id"])
    page.evaluate(
        """() => {
            app.canvas.deselectAll();
            app.canvas.selectNode(app.graph.nodes.find((n) => n.type === "MultiID_IdentitySimilarity"));
            app.canvas.setDirty(true, true);
        }"""
    )
    page.locator("[data-testid=info-button]").click()
    help_text = page.locator(".node-help-content")
    help_text.get_by_text("How it scores").wait_for(timeout=10_000)
    assert help_text.inner_text().startswith("Identity Similarity\n")
    shot = screenshots / "help_page.png"
    page.screenshot(path=str(shot))
    if UPDATE_DOCS:
        shutil.copy(shot, ROOT / "docs" / "screenshots" / "help_page.png")
    page.keyboard.press("Escape")


def test_workflows_are_in_the_template_browser(page):
    templates = page.evaluate(
        f"""async () => {{
            const store = ({STORE})("workflowTemplates");
            await store.loadWorkflowTemplates();
            return store.enhancedTemplates.filter((t) => t.sourceModule === "{PACK_NAME}").map((t) => t.name);
        }}"""
    )
    assert sorted(templates) == sorted(p.stem for p in WORKFLOWS)
