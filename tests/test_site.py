"""The documentation site builds with warnings as errors, its tutorials execute, and a browser can use it.

The site is built once per session exactly as ``python -m mkdocs build --strict`` builds it (the
tutorials run as notebooks: about 2 minutes on 2 idle cores). Two small builds of a copy of docs/
show that a broken link and a failing tutorial cell do fail the build. The built site is then
served on 127.0.0.1 and driven in headless Chromium (Debian's ``chromium``, which .ci/run installs)
over the DevTools protocol: the navigation tabs, a tutorial's rendered figures, the search.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tornado.websocket import websocket_connect

from conftest import REPO

TUTORIALS = ("first_run", "compare_policies", "incident_backtest")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                  "--window-size=1280,900"]


def build(config: Path, site_dir: Path, execute: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "LAUNDERFLOW_DOCS_EXECUTE": "true" if execute else "false"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site_dir)], cwd=REPO, capture_output=True, text=True, env=env)


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = build(REPO / "mkdocs.yml", out)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{(result.stdout + result.stderr)[-8000:]}"
    return out


def page(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text(encoding="utf-8")


# --- the build ---------------------------------------------------------------------------------------


def test_every_tutorial_is_executed_with_its_outputs(site):
    for name in TUTORIALS:
        html = page(site, f"tutorials/{name}")
        assert "jp-OutputArea" in html, f"{name}: no cell outputs (was it executed?)"
        assert "Traceback" not in html, name
    first = page(site, "tutorials/first_run")
    assert "locations sum to [1. 1. 1. 1.]" in first  # the conservation cell's output
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', first)) >= 2  # the two figures
    assert "report: out/tutorials/compare/report.html" in page(site, "tutorials/compare_policies")
    assert re.search(r"inputs met: (\d+) of \1;", page(site, "tutorials/incident_backtest"))


def test_the_reference_is_rendered_from_the_code(site):
    api = page(site, "reference/api")
    for name in ("launderflow.api.run", "launderflow.api.compare", "launderflow.api.Run", "launderflow.api.Comparison"):
        assert f'id="{name}"' in api, name
    assert "Run every scenario with the same seed" in api  # compare's docstring
    assert "<table>" in page(site, "reference/cli") and "launderflow backtest" in page(site, "reference/cli")
    assert "venue_inflow_share_at" in page(site, "reference/metrics")
    assert 'id="scenario"' in page(site, "scenario-reference")


def test_the_search_index_covers_every_page(site):
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    locations = {doc["location"].split("#")[0] for doc in index["docs"]}
    for path in ("", "tutorials/first_run/", "how-to/sweep/", "reference/cli/", "model/", "explanation/validation/"):
        assert path in locations, path


def _docs_copy(tmp_path: Path) -> Path:
    """A copy of docs/ and a config that inherits mkdocs.yml but reads the copy."""
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"INHERIT: {REPO / 'mkdocs.yml'}\ndocs_dir: docs\n", encoding="utf-8")
    return config


def test_a_broken_link_fails_the_build(tmp_path):
    config = _docs_copy(tmp_path)
    assert build(config, tmp_path / "ok", execute=False).returncode == 0  # the copy itself builds
    howto = tmp_path / "docs" / "how-to" / "sweep.md"
    howto.write_text(howto.read_text(encoding="utf-8") + "\nSee [the missing page](missing.md).\n", encoding="utf-8")
    result = build(config, tmp_path / "site", execute=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "missing.md" in output and "strict mode" in output


def test_a_failing_tutorial_fails_the_build(tmp_path):
    config = _docs_copy(tmp_path)
    for name in TUTORIALS:  # tiny tutorials, so that the build is quick; one of them fails
        body = "raise RuntimeError('tutorial broke')" if name == "compare_policies" else "print('fine')"
        (tmp_path / "docs" / "tutorials" / f"{name}.py").write_text(f"# %% [markdown]\n# # {name}\n\n# %%\n{body}\n",
                                                                   encoding="utf-8")
    result = build(config, tmp_path / "site")
    assert result.returncode != 0
    assert "tutorial broke" in result.stdout + result.stderr


# --- in a browser ------------------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    pytest.fail("the site's browser check needs Debian's chromium: apt-get install -y chromium (.ci/run installs it)")


class Browser:
    """A headless Chromium tab driven over the DevTools protocol (tornado's websocket client)."""

    def __init__(self, ws: Any, session: str):
        self.ws, self.session, self.next_id = ws, session, 0

    async def send(self, method: str, session: bool = True, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session and self.session:
            message["sessionId"] = self.session
        await self.ws.write_message(json.dumps(message))
        while True:  # skip events until our answer
            reply = json.loads(await asyncio.wait_for(self.ws.read_message(), 30))
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str, seconds: float = 60) -> Any:
        """Poll until the expression is truthy (the page loads and the search worker indexes in real time)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.25)
        pytest.fail(f"the browser never showed {what} ({expression})")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for(f"document.readyState === 'complete' && location.href === {json.dumps(url)}", url)


@pytest.fixture(scope="module")
def served(site) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


def in_browser(check) -> Any:
    """Run ``check(browser)`` in a fresh headless Chromium; always stop the browser."""
    profile = tempfile.mkdtemp(prefix="launderflow-chromium-")
    proc = subprocess.Popen([chromium(), *CHROMIUM_FLAGS, "--remote-debugging-address=127.0.0.1",
                             "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stderr:  # type: ignore[union-attr]
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                url = match.group(1)
                break
        assert url, "chromium did not start its DevTools endpoint"

        async def main() -> Any:
            ws = await websocket_connect(url, max_message_size=64 * 2**20)
            try:
                browser = Browser(ws, "")
                target = await browser.send("Target.createTarget", url="about:blank")
                attached = await browser.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
                browser.session = attached["sessionId"]
                await browser.send("Page.enable")
                return await check(browser)
            finally:
                ws.close()

        return asyncio.run(main())
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def test_the_site_works_in_a_browser(served, tmp_path):
    async def check(browser: Browser) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        # navigation: the four sections as tabs, and a tab leads to its section
        await browser.goto(f"{served}/")
        seen["tabs"] = await browser.evaluate("[...document.querySelectorAll('.md-tabs__link')].map(a => a.textContent.trim())")
        await browser.evaluate("[...document.querySelectorAll('.md-tabs__link')].find(a => a.textContent.trim() === 'How-to guides').click()")
        seen["after_click"] = await browser.wait_for("location.pathname.startsWith('/how-to/') && document.readyState === 'complete' && location.pathname",
                                                     "the How-to guides section after clicking its tab")
        seen["howto_title"] = await browser.evaluate("document.querySelector('article h1').textContent")
        # a rendered figure: the first tutorial's PNGs are decoded images of real size
        await browser.goto(f"{served}/tutorials/first_run/")
        seen["figures"] = await browser.wait_for(
            "[...document.images].filter(i => i.src.startsWith('data:image/png') && i.complete && i.naturalWidth > 300).length",
            "the tutorial's figures")
        shot = await browser.send("Page.captureScreenshot", format="png")
        (tmp_path / "first_run.png").write_bytes(base64.b64decode(shot["data"]))
        # search: ?q= opens the search and the worker lists results
        await browser.goto(f"{served}/?q=freeze")
        seen["results"] = await browser.wait_for(
            "[...document.querySelectorAll('.md-search-result__item a')].map(a => a.getAttribute('href'))",
            "search results for 'freeze'")
        return seen

    seen = in_browser(check)
    assert seen["tabs"] == ["Home", "Tutorials", "How-to guides", "Reference", "Explanation"]
    assert seen["after_click"] == "/how-to/" and seen["howto_title"].startswith("How-to guides")
    assert seen["figures"] >= 2
    assert (tmp_path / "first_run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("model/" in href for href in seen["results"]), seen["results"]
