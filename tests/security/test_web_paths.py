"""The playground reads task configs only under its root, and says nothing about other files.

Every path that leads outside the root (``..``, absolute, ``~``, symlinks, symlinked folders)
gets the same inline error, and the page is the same byte for byte (the echoed path aside)
whether the file there exists or not. A real server on loopback, with and without ``--token``.
"""

from __future__ import annotations

import os
import shutil
from contextlib import closing

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from markupsafe import escape
from web_page_client import live_workbench

pytestmark = pytest.mark.server

PROMPT = "instruction: Say yes.\ntemplate: '{{ text }}'\n"
BASELINE = "/no/such/folder/task.yaml"  # outside the root and not there at all

# path as typed in the form; OUT is the folder next to the root holding a real task config
OUTSIDE = {
    "dotdot-existing": "../outside/task.yaml",
    "dotdot-missing": "../outside/missing.yaml",
    "dotdot-through-missing-folder": "sub/../../outside/task.yaml",
    "dotdot-dot-slash": "./../outside/task.yaml",
    "absolute-existing": "{out}/task.yaml",
    "absolute-missing": "{out}/missing.yaml",
    "absolute-missing-folder": BASELINE,
    "system-file": "/etc/passwd",
    "proc-environ": "/proc/self/environ",
    "double-slash-absolute": "/{out}/task.yaml",
    "home-tilde": "~/task.yaml",
    "symlink-to-outside-file": "link.yaml",
    "symlink-to-outside-missing": "dangling.yaml",
    "symlinked-folder-existing": "linkdir/task.yaml",
    "symlinked-folder-missing": "linkdir/missing.yaml",
    "symlinked-folder-dotdot": "linkdir/../outside/task.yaml",
    "root-itself-parent": "..",
    "nul-byte": "task.yaml\x00.txt",
    "sibling-with-root-prefix": "../root-evil/task.yaml",
}


@pytest.fixture(scope="module", params=[None, "s3cret-token"], ids=["no-token", "with-token"])
def live(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("paths")
    with live_workbench(folder, token=request.param) as server:
        root, out = server.data.root, folder / "outside"
        out.mkdir()
        shutil.copy(root / "task.yaml", out / "task.yaml")
        shutil.copy(root / "data.jsonl", out / "data.jsonl")
        (folder / "root-evil").mkdir()  # "root-evil" starts with "root": not inside it
        shutil.copy(root / "task.yaml", folder / "root-evil" / "task.yaml")
        os.symlink(out / "task.yaml", root / "link.yaml")
        os.symlink(out / "missing.yaml", root / "dangling.yaml")
        os.symlink(out, root / "linkdir")
        os.symlink(root / "task.yaml", root / "alias.yaml")  # inside to inside: fine
        os.symlink(root / "loop", root / "loop")
        server.outside = out
        yield server


@pytest.fixture(scope="module")
def page(live):
    client = live.page_client()
    yield client
    client.close()


def _post(page, path: str, action: str = "run"):
    return page.post("/playground", data={"config_path": path, "prompt_yaml": PROMPT,
                                          "split": "test", "examples": "0", "model": "",
                                          "action": action, "budget_calls": "5"},
                     follow_redirects=False)


def _normalized(body: str, path: str) -> str:
    """The page with the echoed path taken out (it is the user's own input)."""
    return body.replace(str(escape(path)), "PATH")


@pytest.mark.parametrize("action", ["run", "eval_job", "optimize_job"])
@pytest.mark.parametrize("case", list(OUTSIDE))
def test_a_path_outside_the_root_gets_one_answer(live, page, case, action):
    path = OUTSIDE[case].format(out=live.outside)
    baseline = _post(page, BASELINE, action)
    before = live.fingerprint()
    response = _post(page, path, action)
    assert response.status_code == 422
    assert f"config must be a file under {live.data.root}" in response.text
    assert "no file at" not in response.text
    assert _normalized(response.text, path) == _normalized(baseline.text, BASELINE)
    assert live.fingerprint() == before, "a refused path started something"


@pytest.mark.parametrize("path", ["task.yaml", "./task.yaml", "sub/../task.yaml", "alias.yaml",
                                  "{root}/task.yaml"])
def test_a_config_under_the_root_runs(live, page, path):
    response = _post(page, path.format(root=live.data.root))
    assert response.status_code == 200, response.text[-400:]
    assert 'id="playground-results"' in response.text


@pytest.mark.parametrize("path", ["missing.yaml", "loop", "a" * 5000, "sub/" * 2000 + "x",
                                  "."])
def test_odd_paths_under_the_root_are_inline_errors(live, page, path):
    """Inside the root a missing file may be named; odd names never end in a server error."""
    response = _post(page, path)
    assert response.status_code == 422
    assert 'data-field="config_path"' in response.text


def test_the_root_is_the_folder_given(live, tmp_path):
    """A second server rooted in the outside folder reads the config the first one refused."""
    from helpers import free_port
    from web_page_client import page_http_client, running_workbench

    from promptmill.web import create_app

    port = free_port()
    app = create_app(live.data.url, root=live.outside, port=port)
    with running_workbench(app, port) as base, closing(page_http_client(base)) as other:
        response = _post(other, "task.yaml")
        assert response.status_code == 200 and 'id="playground-results"' in response.text
        refused = _post(other, str(live.data.root / "task.yaml"))
        assert f"config must be a file under {live.outside}" in refused.text
