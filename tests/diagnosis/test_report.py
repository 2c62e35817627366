import pytest
from helpers import skip_or_fail

from promptmill.diagnosis import diagnose
from promptmill.diagnosis.report import render_html

HOSTILE = "<script>alert('x')</script><b>bold</b>"


@pytest.fixture
def hostile_run(store):
    from crafted import evaluate_crafted

    table = {f"item {i}": ("yes" if i % 2 else "no", HOSTILE if i < 6 else
                           ("yes" if i % 2 else "no")) for i in range(12)}
    return evaluate_crafted(store, table, "Say yes or no.").run_id


def test_html_escapes_model_output(store, hostile_run):
    html = render_html(diagnose(hostile_run, store=store))
    assert "<script>alert" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(" in html
    for section in ("summary", "suggestions", "categories", "scores", "confusion", "clusters",
                    "slices", "robustness", "calibration"):
        assert f'id="{section}"' in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # no network


@pytest.mark.browser
@pytest.mark.slow
def test_report_renders_in_headless_chromium(store, hostile_run, tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed")
    path = tmp_path / "report.html"
    path.write_text(render_html(diagnose(hostile_run, store=store)))
    dialogs = []
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox"])
        except Exception as exc:  # any launch failure means no browser here
            skip_or_fail(f"headless Chromium unavailable: {exc}")
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(path.as_uri())
        assert page.title().startswith("promptmill diagnose: run")
        assert page.locator("#categories table tr").count() >= 2
        assert page.locator("#confusion svg rect").count() >= 4
        assert page.locator("#scores svg rect").count() == 10
        assert page.locator("#suggestions li").count() >= 1
        # the hostile output is shown as text, never run or rendered as markup
        assert HOSTILE in page.locator("#categories").inner_text()
        assert page.locator("#categories b:text('bold')").count() == 0
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert dialogs == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
