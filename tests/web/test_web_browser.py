"""End to end in headless Chromium: every page, a compare, a rating, live steps, a screenshot."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from helpers import free_port, skip_or_fail, wait_for
from web_fixtures import HOSTILE

pytestmark = [pytest.mark.browser, pytest.mark.server]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(web_store, tmp_path_factory):
    """The workbench under uvicorn on a loopback port, in a thread, stopped at the end."""
    import httpx
    import uvicorn

    from promptmill.web import create_app

    port = free_port()
    app = create_app(web_store.url, root=tmp_path_factory.getbasetemp())
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/runs", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    if not wait_for(up, timeout=20):
        skip_or_fail("the workbench server did not start")
    yield base
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        skip_or_fail("Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    pg = context.new_page()
    pg.dialogs = []  # any alert() would mean model output ran as script
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    context.close()


PAGES = ["/runs", "/runs/{a}", "/runs/{a}?failures=1", "/runs/{a}/examples/r10",
         "/compare?runs={a}+{b}", "/prompts", "/prompts/sentiment", "/runs/{o}/optimize",
         "/runs/{a}/plots", "/playground", "/jobs", "/runs/{a}/diagnose", "/suites"]


def test_every_page_opens_without_errors_or_script_from_output(page, server, web_store):
    for path in PAGES:
        url = server + path.format(a=web_store.run_a, b=web_store.run_b,
                                   o=web_store.optimize_run)
        response = page.goto(url)
        assert response.status in (200, 503), f"{path}: {response.status}"
        assert page.locator("h1").first.is_visible(), path
    assert page.dialogs == [] and page.errors == []


def test_hostile_output_shows_as_text(page, server, web_store):
    page.goto(f"{server}/runs/{web_store.run_a}/examples/r10")
    assert page.locator("#output").text_content() == HOSTILE
    assert page.locator("#output b").count() == 0 and page.dialogs == []


def test_compare_two_runs_from_the_runs_list(page, server, web_store, tmp_path):
    page.goto(f"{server}/runs?kind=eval")
    page.check(f"input[name=runs][value='{web_store.run_a}']")
    page.check(f"input[name=runs][value='{web_store.run_b}']")
    page.click("text=Compare selected runs")
    page.wait_for_selector("#verdicts")
    assert "McNemar" in page.locator("#verdicts").inner_text()
    assert page.locator("#per-example ins").count() >= 1
    assert "instruction rewritten" in page.locator(".changes").first.inner_text()
    shot = tmp_path / "compare.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert page.dialogs == []


def test_compare_with_one_run_shows_the_error_inline(page, server, web_store):
    page.goto(f"{server}/compare")
    page.fill("input[name=runs]", str(web_store.run_a))
    page.click("#compare-runs button")
    assert page.locator("[role=alert]").inner_text() == "choose at least two runs to compare"


def test_rate_an_output(page, server, web_store):
    page.goto(f"{server}/runs/{web_store.run_a}/examples/r10")
    page.fill("input[name=score]", "2")
    page.fill("textarea[name=comment]", "printed markup instead of a label")
    page.click("text=Rate this output")
    page.wait_for_selector(".notice")
    assert "0.250" in page.locator("#ratings").inner_text()
    assert "printed markup instead of a label" in page.locator("#ratings").inner_text()
    page.fill("input[name=score]", "9")
    page.click("text=Rate this output")
    assert "from 1 to 5, not 9" in page.locator("[role=alert]").inner_text()


def test_tag_a_prompt_version_production(page, server):
    page.goto(f"{server}/prompts/sentiment")
    page.select_option("#tag-form select[name=version]", "1")
    page.fill("#tag-form input[name=tag]", "production")
    page.click("#tag-form button")
    assert page.locator("#v1 .tag").inner_text() == "production"


def test_playground_runs_a_prompt(page, server, web_store):
    page.goto(f"{server}/playground")
    page.fill("input[name=config_path]", str(web_store.config))
    page.fill("textarea[name=prompt_yaml]", "instruction: Label it.\n"
                                            "template: 'Review: {{ text }}'\n")
    page.fill("input[name=examples]", "0-3")
    page.fill("input[name=model]", "fake:neutral")
    page.click("button[value=run]")
    page.wait_for_selector("#playground-results")
    assert page.locator("#playground-results tbody tr").count() == 4


def test_live_trajectory_arrives_over_server_sent_events(page, server, web_store):
    from promptmill.store.db import Store

    store = Store(web_store.url)
    run_id = store.create_run(kind="optimize", task="live", split="validation", model="fake",
                              model_identity="fake", metric="exact", prompt_hash="x",
                              fingerprint="browser-live", config="{}", status="running")
    page.goto(f"{server}/runs/{run_id}/optimize")
    for step, score in enumerate((0.2, 0.4, 0.7)):
        store.add_step(run_id, {"step": step, "event": "new incumbent", "candidate_idx": step,
                                "incumbent_score": score, "calls": step * 3, "tokens": 10,
                                "seconds": 0.1})
    page.wait_for_function("document.querySelectorAll('#steps tbody tr').length === 3")
    assert page.locator("#n-steps").inner_text() == "3"
    assert page.locator("#chart polyline.line").get_attribute("points").count(",") == 3
    store.update_run(run_id, status="finished")
    page.wait_for_function("document.getElementById('status').textContent === 'finished'")
    assert page.dialogs == [] and page.errors == []


def test_scripts_post_through_promptmill_fetch(page, server, web_store):
    """static/csrf.js: promptmill.fetch sends the token header; a bare fetch() is refused."""
    page.goto(f"{server}/runs/{web_store.run_a}/examples/r2")
    body = "example_id=r2&score=4&scale=5&comment=from+a+script"
    statuses = page.evaluate("""async (body) => {
        const opts = {method: "POST", body: body, redirect: "manual",
                      headers: {"Content-Type": "application/x-www-form-urlencoded"}};
        const bare = await fetch(location.pathname.replace(/examples\\/.*/, "rate"), opts);
        const guarded = await promptmill.fetch(location.pathname.replace(/examples\\/.*/,
                                                                          "rate"), opts);
        return [bare.status, guarded.type === "opaqueredirect" ? 303 : guarded.status];
    }""", body)
    assert statuses == [403, 303]
    page.goto(f"{server}/runs/{web_store.run_a}/examples/r2")
    assert "from a script" in page.locator("#ratings").inner_text()
    assert page.dialogs == [] and page.errors == []


@pytest.fixture
def attacker_site():
    """Another web site on this machine (another port: the same *site* for cookies)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path, "").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", pages
    httpd.shutdown()
    thread.join(timeout=10)


def test_a_page_on_another_origin_cannot_tag_or_rate(page, server, web_store, attacker_site):
    site, pages = attacker_site
    pages["/form.html"] = (f'<form id="f" method="post" action="{server}/prompts/sentiment/tag">'
                           '<input name="version" value="1"><input name="tag" value="pwned">'
                           '</form><script>document.getElementById("f").submit()</script>')
    pages["/fetch.html"] = ("<script>fetch('" + server + f"/runs/{web_store.run_a}/rate', "
                            "{method: 'POST', mode: 'no-cors', credentials: 'include', "
                            "body: new URLSearchParams({example_id: 'r3', score: '1', "
                            "scale: '5', comment: 'pwned'})}).then(() => document.title = "
                            "'sent')</script>")
    page.goto(f"{server}/prompts/sentiment")  # the user has a session with the workbench
    with page.expect_navigation(url=f"{server}/prompts/sentiment/tag"):
        page.goto(f"{site}/form.html")
    assert "refused" in page.content()
    page.goto(f"{site}/fetch.html")
    page.wait_for_function("document.title === 'sent'")
    page.goto(f"{server}/prompts/sentiment")
    assert "pwned" not in page.content()
    page.goto(f"{server}/runs/{web_store.run_a}/examples/r3")
    assert "pwned" not in page.locator("#ratings").inner_text()
