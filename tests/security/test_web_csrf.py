"""Cross-site requests against the workbench: a real server on loopback, real HTTP.

Every state-changing route, taken from the app's own router, is attacked once per case, with
and without ``--token``. Each Origin/Referer case carries a valid CSRF token and each token case
a valid Origin, so every case proves one check on its own. The attacker drives the user's
browser: it holds the user's cookies (SameSite=Strict cookies reach other ports of the same
host), the headers and the body are the attacker's.
"""

from __future__ import annotations

import secrets
from contextlib import closing

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from web_page_client import (
    fill_path,
    live_workbench,
    page_token,
    session_cookie,
    workbench_routes,
)

pytestmark = pytest.mark.server

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# every state-changing route of the app, plus paths no route serves: the guard runs first
ROUTES = workbench_routes(UNSAFE) + [("POST", "/static/style.css"), ("PUT", "/playground"),
                                     ("DELETE", "/runs/{run_id}"), ("PATCH", "/no/such/page")]
PROMPT = "instruction: Say yes.\ntemplate: '{{ text }}'\n"


def valid_form(template: str, live) -> dict[str, str]:
    """A form the route would act on, so a refusal is visible as nothing written."""
    forms = {
        "/playground": {"config_path": "task.yaml", "prompt_yaml": PROMPT, "split": "test",
                        "examples": "0", "model": "", "action": "run"},
        "/prompts/{name}/tag": {"version": "1", "tag": f"t{secrets.token_hex(4)}"},
        "/runs/{run_id}/rate": {"example_id": live.data.example_id, "score": "4",
                                "scale": "5", "comment": "fine"},
        "/jobs/{job_id}/cancel": {},
    }
    return dict(forms.get(template, {}))


CHANGES_STATE = {"/playground", "/prompts/{name}/tag", "/runs/{run_id}/rate"}


@pytest.fixture(scope="module", params=[None, "s3cret-token"], ids=["no-token", "with-token"])
def live(request, tmp_path_factory):
    with live_workbench(tmp_path_factory.mktemp("csrf"), token=request.param) as server:
        yield server


@pytest.fixture(scope="module")
def victim(live):
    """The user's browser: logged in, with a session cookie from a workbench page."""
    client = live.browser()
    token = page_token(client.get("/playground").text)
    assert session_cookie(client.cookies)
    yield client, token
    client.close()


def _other_session_token(live) -> str:
    other = live.page_client()
    try:
        return other.csrf_token()
    finally:
        other.close()


# Each case: (headers, form changes, cookie changes) built from the live server and the
# victim's own valid token. Own origin is http://127.0.0.1:PORT.
def _origin_cases():
    return {
        "no-origin-no-referer": lambda live, tok: ({}, {"csrf_token": tok}),
        "origin-evil": lambda live, tok: ({"Origin": "https://evil.example"},
                                          {"csrf_token": tok}),
        "origin-null": lambda live, tok: ({"Origin": "null"}, {"csrf_token": tok}),
        "origin-other-loopback-port": lambda live, tok: (
            {"Origin": f"http://127.0.0.1:{live.port + 1}"}, {"csrf_token": tok}),
        "origin-localhost-alias": lambda live, tok: (
            {"Origin": f"http://localhost:{live.port}"}, {"csrf_token": tok}),
        "origin-https-scheme": lambda live, tok: (
            {"Origin": f"https://127.0.0.1:{live.port}"}, {"csrf_token": tok}),
        "origin-no-port": lambda live, tok: ({"Origin": "http://127.0.0.1"},
                                             {"csrf_token": tok}),
        "origin-userinfo-trick": lambda live, tok: (
            {"Origin": f"http://127.0.0.1:{live.port}@evil.example"}, {"csrf_token": tok}),
        "origin-suffix-domain": lambda live, tok: (
            {"Origin": f"http://127.0.0.1:{live.port}.evil.example"}, {"csrf_token": tok}),
        "origin-evil-referer-own": lambda live, tok: (
            {"Origin": "https://evil.example", "Referer": f"{live.base}/playground"},
            {"csrf_token": tok}),
        "origin-garbage": lambda live, tok: ({"Origin": "not a url"}, {"csrf_token": tok}),
        "referer-evil": lambda live, tok: ({"Referer": "https://evil.example/attack.html"},
                                           {"csrf_token": tok}),
        "referer-other-loopback-port": lambda live, tok: (
            {"Referer": f"http://127.0.0.1:{live.port + 1}/"}, {"csrf_token": tok}),
        "referer-suffix-domain": lambda live, tok: (
            {"Referer": f"http://127.0.0.1:{live.port}.evil.example/playground"},
            {"csrf_token": tok}),
        "referer-relative": lambda live, tok: ({"Referer": "/playground"}, {"csrf_token": tok}),
    }


def _token_cases():
    own = lambda live: {"Origin": live.base}  # noqa: E731
    return {
        "no-token": lambda live, tok: (own(live), {}),
        "empty-token": lambda live, tok: (own(live), {"csrf_token": ""}),
        "wrong-token": lambda live, tok: (own(live), {"csrf_token": secrets.token_hex(32)}),
        "token-of-another-session": lambda live, tok: (
            own(live), {"csrf_token": _other_session_token(live)}),
        "token-in-query-string-only": lambda live, tok: (own(live), {}, f"?csrf_token={tok}"),
        "token-twice-one-wrong": lambda live, tok: (own(live),
                                                    {"csrf_token": [tok, tok[::-1]]}),
        "token-truncated": lambda live, tok: (own(live), {"csrf_token": tok[:-1]}),
        "token-header-wrong": lambda live, tok: ({**own(live), "X-CSRF-Token": tok[::-1]},
                                                 {"csrf_token": tok}),
        "text-plain-form": lambda live, tok: (
            {**own(live), "Content-Type": "text/plain"}, f"csrf_token={tok}"),
        "json-body-token": lambda live, tok: (
            {**own(live), "Content-Type": "application/json"}, f'{{"csrf_token": "{tok}"}}'),
    }


ORIGIN_CASES, TOKEN_CASES = _origin_cases(), _token_cases()
ATTACKS = {**ORIGIN_CASES, **TOKEN_CASES}


def _send(client, method: str, path: str, headers: dict, body, query: str = ""):
    if isinstance(body, str):
        return client.request(method, path + query, headers=headers, content=body)
    return client.request(method, path + query, headers=headers, data=body)


def _assert_refused(response, live, before: str) -> None:
    assert response.status_code == 403, response.text[:300]
    assert response.headers.get("x-promptmill-refused") in ("origin", "csrf")
    assert "refused:" in response.text
    assert live.fingerprint() == before, "a refused request changed the store"


@pytest.mark.parametrize("method, template", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@pytest.mark.parametrize("case", list(ATTACKS))
def test_cross_site_request_is_refused(live, victim, method, template, case):
    client, token = victim
    built = ATTACKS[case](live, token)
    headers, changes, query = (*built, "")[:3]
    body = changes if isinstance(changes, str) else {**valid_form(template, live), **changes}
    before = live.fingerprint()
    response = _send(client, method, fill_path(template, live.data), headers, body, query)
    _assert_refused(response, live, before)


@pytest.mark.parametrize("method, template", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_a_post_without_a_session_cookie_is_refused(live, method, template):
    """A token copied from elsewhere is useless without its session's cookie."""
    token = _other_session_token(live)
    client = live.browser()  # logged in (with --token), then its session cookie is dropped
    try:
        for name in [n for n in client.cookies if n.startswith("promptmill_session")]:
            client.cookies.delete(name)
        assert session_cookie(client.cookies) is None
        before = live.fingerprint()
        response = _send(client, method, fill_path(template, live.data), {"Origin": live.base},
                         {**valid_form(template, live), "csrf_token": token})
        _assert_refused(response, live, before)
        assert "session cookie is missing" in response.text
    finally:
        client.close()


@pytest.mark.parametrize("method, template", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_a_tossed_session_cookie_is_refused(live, victim, method, template):
    """A page on another port of this host can set cookies for it; it still cannot make the
    token, which is an HMAC under the server's secret."""
    import hashlib

    client, _ = victim
    forged = secrets.token_urlsafe(32)
    cookies = {f"promptmill_session_{live.port}": forged}
    with closing(live.browser()) as attacker:
        attacker.cookies.update(cookies)
        before = live.fingerprint()
        response = _send(attacker, method, fill_path(template, live.data),
                         {"Origin": live.base},
                         {**valid_form(template, live),
                          "csrf_token": hashlib.sha256(forged.encode()).hexdigest()})
        _assert_refused(response, live, before)


STATE_ROUTES = [(m, p) for m, p in workbench_routes(UNSAFE)]


@pytest.mark.parametrize("method, template", STATE_ROUTES,
                         ids=[f"{m} {p}" for m, p in STATE_ROUTES])
def test_the_workbench_page_is_accepted(live, method, template):
    page = live.page_client()
    try:
        before = live.fingerprint()
        response = page.request(method, fill_path(template, live.data),
                                data=valid_form(template, live), follow_redirects=False)
        assert "x-promptmill-refused" not in response.headers, response.text[:300]
        assert response.status_code in (200, 303), response.text[:300]
        if template in CHANGES_STATE:
            assert live.fingerprint() != before, "the accepted request changed nothing"
    finally:
        page.close()


def test_multipart_forms_are_checked_too(live):
    page = live.page_client()
    try:
        page.csrf_token()  # loads a page: the session cookie
        form = {"example_id": live.data.example_id, "score": "2", "scale": "5"}
        path = f"/runs/{live.data.run_id}/rate"
        before = live.fingerprint()
        with closing(live.browser(cookies=page.cookies)) as plain:  # same session, no token
            refused = plain.post(path, files={k: (None, v) for k, v in form.items()},
                                 headers={"Origin": live.base})
        assert refused.status_code == 403 and "CSRF token is missing" in refused.text
        assert live.fingerprint() == before
        # the page client adds its token as one more multipart field
        accepted = page.request("POST", path, files={k: (None, v) for k, v in form.items()},
                                follow_redirects=False)
        assert accepted.request.headers["content-type"].startswith("multipart/form-data")
        assert "x-csrf-token" not in accepted.request.headers  # so the field carried it
        assert accepted.status_code == 303 and live.fingerprint() != before
    finally:
        page.close()


def test_fetch_with_the_header_token_is_accepted(live):
    """What static/csrf.js does: the token as X-CSRF-Token, the body left alone."""
    page = live.page_client()
    try:
        token = page.csrf_token()
        form = valid_form("/runs/{run_id}/rate", live)
        before = live.fingerprint()
        response = page.request("POST", f"/runs/{live.data.run_id}/rate", content=
                                "&".join(f"{k}={v}" for k, v in form.items()),
                                headers={"X-CSRF-Token": token, "Content-Type":
                                         "application/x-www-form-urlencoded"},
                                follow_redirects=False)
        assert response.status_code == 303 and live.fingerprint() != before
    finally:
        page.close()


def test_the_session_cookie_is_strict_and_http_only(live):
    import httpx

    auth = {"Authorization": f"Bearer {live.token}"} if live.token else {}
    with httpx.Client(base_url=live.base, headers=auth, timeout=10) as client:
        response = client.get("/playground")
        cookie = next(v for k, v in response.headers.multi_items()
                      if k == "set-cookie" and v.startswith("promptmill_session"))
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/"} <= flags


def test_the_refusal_says_what_is_missing(live, victim):
    client, token = victim
    no_origin = client.post("/prompts/small/tag", data={"csrf_token": token})
    assert "no Origin or Referer header" in no_origin.text
    no_token = client.post("/prompts/small/tag", headers={"Origin": live.base})
    assert "CSRF token is missing" in no_token.text
    as_json = client.post("/prompts/small/tag", headers={"Origin": live.base,
                                                         "Accept": "application/json"})
    assert as_json.status_code == 403 and "CSRF token" in as_json.json()["error"]


@pytest.mark.parametrize("case", ["page", "refusal"])
def test_no_other_site_may_frame_the_workbench(live, victim, case):
    """Framing would let a page trick the user into pressing the workbench's own buttons."""
    client, token = victim
    response = client.get("/playground") if case == "page" else \
        client.post("/prompts/small/tag", headers={"Origin": "https://evil.example"},
                    data={"csrf_token": token})
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    if case == "refusal":  # and a refusal page hands out no token
        assert '<meta name="csrf-token" content="">' in response.text


def test_a_stranger_without_cookies_changes_nothing(live):
    """With --token nothing is served without it; without --token a stranger still cannot
    post, having no session."""
    import httpx

    with httpx.Client(base_url=live.base, timeout=10) as stranger:
        assert stranger.get("/runs").status_code == (401 if live.token else 200)
        before = live.fingerprint()
        response = stranger.post("/prompts/small/tag", headers={"Origin": live.base},
                                 data={"version": "1", "tag": "stranger"})
        assert response.status_code in ((401, 403) if live.token else (403,))
        assert live.fingerprint() == before


GET_ROUTES = workbench_routes({"GET"})


@pytest.mark.parametrize("method, template", GET_ROUTES,
                         ids=[f"{m} {p}" for m, p in GET_ROUTES])
def test_get_routes_change_nothing(live, method, template):
    with closing(live.browser()) as client:
        before = live.fingerprint()
        response = client.get(fill_path(template, live.data))
        assert response.status_code < 500, response.text[:300]
        assert live.fingerprint() == before, f"GET {template} wrote to the store"
