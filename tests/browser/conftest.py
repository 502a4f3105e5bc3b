"""A real ComfyUI server with the pack on the tiny models, and its frontend in headless Chromium.

Chromium is Debian's (`apt-get install chromium`), driven by Playwright from PyPI; Playwright's own browser
downloads are never used. CHROMIUM overrides the executable. Without Chromium or Playwright the browser tests
are skipped with the reason, except under MULTIID_REQUIRE_BROWSER=1 (.ci/run, which installs both).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from build_workflows import write_example_lora
from comfy_env import ComfyServer, make_base_dir

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
VIEWPORT = {"width": 1920, "height": 1080}
OUTPUT = ROOT / "test-output" / "screenshots"


def unavailable(reason: str):
    """Skip here; fail where the browser is required (.ci/run sets MULTIID_REQUIRE_BROWSER=1)."""
    if os.environ.get("MULTIID_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).is_file() and not shutil.which(CHROMIUM):
        unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM)")
    try:
        from playwright import sync_api
    except ImportError:
        unavailable("Playwright is not installed: pip install playwright (it needs no browser download)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    base = make_base_dir(tmp_path_factory.mktemp("browser_base"))
    write_example_lora(base)  # the LoRA consisid_ksampler_lora.json names
    with ComfyServer(base) as running:
        # A returning user: no first-run template dialog or minimap over the graph, and node text drawn at
        # any zoom (the screenshots show whole graphs).
        running.post("/settings/Comfy.TutorialCompleted", True)
        running.post("/settings/Comfy.Minimap.Visible", False)
        running.post("/settings/LiteGraph.Canvas.MinFontSizeForLOD", 0)
        yield running


@pytest.fixture(scope="session")
def object_info(server):
    return server.get("/object_info")


@pytest.fixture(scope="session")
def page(browser, server):
    """The graph editor, loaded, with the dialogs that would hide the graph replaced by recorders."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script("localStorage.setItem('vueNodesBannerDismissed', 'true')")
    editor = context.new_page()
    errors: list[str] = []
    editor.on("pageerror", lambda error: errors.append(str(error)))
    editor.goto(server.url)
    editor.wait_for_function(
        "() => window.app?.graph && window.LiteGraph?.registered_node_types?.MultiID_IdentitySimilarity",
        timeout=120_000,
    )
    editor.evaluate(
        """() => {
            window.multiid = {missingNodes: [], missingModels: []};
            app.showMissingNodesError = (types) => { window.multiid.missingNodes = types; };
            app.showMissingModelsError = (models) => { window.multiid.missingModels = models; };
        }"""
    )
    editor.page_errors = errors
    yield editor
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT
