"""``serve --access-log`` prints request lines, never the keys in their query strings.

The records are built exactly as uvicorn's HTTP protocols build them, then go through the
filter and formatter that ``promptmill serve`` hands to uvicorn; the real server's log is
checked end to end in test_secrets_echo.py.
"""

from __future__ import annotations

import logging
import sys

import pytest

uvicorn_logging = pytest.importorskip("uvicorn.logging")

from promptmill.serve.limits import uvicorn_log_config  # noqa: E402

SERVER_KEY = "srv-0f1e2d3c4b5a69788796"
ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'  # uvicorn's access call, h11 and httptools alike

# name -> request target; the secret in each must not be printed
TARGETS = {
    "api_key": f"/v1/models?api_key={SERVER_KEY}",
    "key": f"/v1/models?key={SERVER_KEY}",
    "token": f"/v1/chat/completions?token={SERVER_KEY}",
    "access_token": f"/v1/models?access_token={SERVER_KEY}",
    "apiKey": f"/v1/models?apiKey={SERVER_KEY}",
    "encoded-name": f"/v1/models?api%5Fkey={SERVER_KEY}",
    "x-api-key": f"/v1/models?x-api-key={SERVER_KEY}",
    "second-param": f"/v1/models?q=1&key={SERVER_KEY}",
    "semicolon": f"/v1/models?q=1;token={SERVER_KEY}",
    "unknown-key-short": "/v1/models?key=hunter2",  # not the server's key, but a key's name
    "harmless-name-server-key": f"/v1/models?user={SERVER_KEY}",
    "encoded-server-key": "/v1/models?user=" + SERVER_KEY.replace("-", "%2D"),
    "key-shaped-value": "/v1/models?user=sk-0a1b2c3d4e5f6a7b8c9d0e1f",
    "key-in-path": "/v1/sk-0a1b2c3d4e5f6a7b8c9d0e1f/models",
    "server-key-in-path": f"/v1/{SERVER_KEY}/models",
}
HIDDEN = {"unknown-key-short": "hunter2", "key-shaped-value": "0a1b2c3d4e5f6a7b8c9d0e1f",
          "key-in-path": "0a1b2c3d4e5f6a7b8c9d0e1f", "encoded-server-key": "0f1e2d3c4b5a69788796"}


def _configured():
    config = uvicorn_log_config([SERVER_KEY, None])
    spec = dict(config["filters"]["redact_secrets"])
    factory = spec.pop("()")
    access = config["formatters"]["access"]
    formatter = uvicorn_logging.AccessFormatter(fmt=access["fmt"], use_colors=False)
    return config, factory(**spec), formatter


def _access_line(target: str) -> str:
    _, redaction, formatter = _configured()
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, ACCESS_FORMAT,
                               ("127.0.0.1:50000", "GET", target, "1.1", 200), None)
    assert redaction.filter(record)
    return formatter.format(record)


@pytest.mark.parametrize("name", TARGETS, ids=list(TARGETS))
def test_access_line_hides_keys_in_query_and_path(name):
    line = _access_line(TARGETS[name])
    assert HIDDEN.get(name, SERVER_KEY) not in line
    assert "***" in line and '"GET /v1/' in line and " 200" in line  # still a useful line


def test_a_plain_request_line_is_unchanged():
    assert '"GET /v1/models?limit=5&order=asc HTTP/1.1" 200' in _access_line(
        "/v1/models?limit=5&order=asc")


def test_every_handler_carries_the_filter():
    config, _, _ = _configured()
    assert config["handlers"] and all("redact_secrets" in h.get("filters", [])
                                      for h in config["handlers"].values())


def test_an_error_line_with_a_traceback_hides_the_key():
    _, redaction, _ = _configured()
    try:
        raise RuntimeError(f"backend said Bearer {SERVER_KEY}")
    except RuntimeError:
        record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1,
                                   "Exception in ASGI application %s", (SERVER_KEY,),
                                   sys.exc_info())
    redaction.filter(record)
    text = uvicorn_logging.DefaultFormatter(fmt="%(message)s", use_colors=False).format(record)
    assert "RuntimeError" in text and SERVER_KEY not in text
