"""``promptmill ui``: refuses open addresses without a token; serves the store it is given."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("fastapi")

from helpers import free_port, run_main, skip_or_fail, wait_for


def test_an_open_address_without_a_token_is_refused(capsys, monkeypatch):
    monkeypatch.delenv("PROMPTMILL_UI_TOKEN", raising=False)
    code, out = run_main(["ui", "--host", "0.0.0.0", "--port", "1"], capsys)
    assert code == 2
    assert "error: --host 0.0.0.0 is reachable from other machines" in out
    assert "export PROMPTMILL_UI_TOKEN=" in out and "Traceback" not in out


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True),
                                            ("::1", True), ("0.0.0.0", False),
                                            ("192.168.1.4", False), ("example.org", False)])
def test_loopback_detection(host, loopback):
    from promptmill.cli.common import is_loopback

    assert is_loopback(host) is loopback


def _get(url: str, headers: dict | None = None):
    import httpx

    try:
        return httpx.get(url, headers=headers or {}, timeout=2)
    except httpx.HTTPError:
        return None


def _start_ui(args: list[str], env: dict[str, str], cwd=None):
    """``promptmill ui ARGS`` in its own process once it answers, and its base URL."""
    port = args[args.index("--port") + 1]
    proc = subprocess.Popen([sys.executable, "-m", "promptmill.cli.app", "ui", *args], env=env,
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    if not wait_for(lambda: _get(f"{base}/runs") is not None, timeout=30):
        proc.kill()
        skip_or_fail("promptmill ui did not start: "
                     + (proc.stdout.read().decode() if proc.poll() is not None else ""))
    return proc, base


@pytest.mark.server
def test_the_command_serves_the_clis_store_with_a_token(web_store):
    port = free_port()
    env = {**os.environ, "PROMPTMILL_DB": web_store.url, "MY_TOKEN": "t0ken"}
    proc, base = _start_ui(["--port", str(port), "--token-env", "MY_TOKEN"], env)
    try:
        assert _get(f"{base}/runs").status_code == 401
        ok = _get(f"{base}/runs/{web_store.run_a}", {"Authorization": "Bearer t0ken"})
        assert ok.status_code == 200 and "Cost ledger" in ok.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "promptmill workbench on http://127.0.0.1" in proc.stdout.read().decode()


@pytest.mark.parametrize("args, message", [
    (["--root", "/no/such/folder"], "--root /no/such/folder: no folder there"),
    (["--root", __file__], f"--root {__file__}: is a file, not a folder"),
    (["--allowed-host", "evil host"], "--allowed-host 'evil host' is not a host name"),
    (["--allowed-host", "a:b:c"], "is not a host name"),
])
def test_bad_ui_options_are_one_line_errors(capsys, args, message):
    code, out = run_main(["ui", "--port", "1", *args], capsys)
    assert code == 2 and message in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1


@pytest.mark.server
def test_allowed_host_and_root_reach_the_server(web_store, tmp_path):
    """``--allowed-host`` admits a name (other names get 400), ``--root`` bounds the
    playground, and the page's form posts work with its token and Origin."""
    import httpx
    from web_page_client import page_http_client

    port = free_port()
    env = {**os.environ, "PROMPTMILL_DB": web_store.url}
    proc, base = _start_ui(["--port", str(port), "--allowed-host", "workbench.test", "--root",
                            str(web_store.config.parent)], env, cwd=tmp_path)
    try:
        assert _get(f"{base}/runs", {"Host": f"workbench.test:{port}"}).status_code == 200
        assert _get(f"{base}/runs", {"Host": f"evil.example:{port}"}).status_code == 400
        with page_http_client(base) as page:
            form = {"prompt_yaml": "template: '{{ text }}'", "examples": "0", "model": "fake:x"}
            inside = page.post("/playground", data={**form, "config_path": "task.yaml"})
            assert inside.status_code == 200 and 'id="playground-results"' in inside.text
            outside = page.post("/playground", data={**form, "config_path": "../task.yaml"})
            assert outside.status_code == 422
            assert f"config must be a file under {web_store.config.parent}" in outside.text
        assert httpx.post(f"{base}/playground", data=form, timeout=5).status_code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    printed = " ".join(proc.stdout.read().decode().split())  # the console wraps long lines
    assert f"configs under {web_store.config.parent}" in printed
