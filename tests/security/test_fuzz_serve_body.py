"""Hypothesis fuzz of the served endpoint's JSON body, through fuzz_targets_serve.py.

Random bytes, random JSON values, valid bodies with fields replaced, dropped or added, and valid
bodies with bytes flipped, cut or inserted, to both endpoints and both kinds of prompt: every
reply is a 200 completion or a JSON 4xx error, never a 5xx or an exception. Bounded and
derandomized, so ``make test`` runs the same examples every time.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fuzz_targets_serve import encode, fuzz_serve_body
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20)
FIELDS = ["model", "messages", "prompt", "stream", "stream_options", "max_tokens",
          "max_completion_tokens", "temperature", "top_p", "seed", "stop", "n", "echo"]
targets = st.tuples(st.integers(0, 1), st.integers(0, 1))


def valid_body(endpoint: int, template: int, stream: bool = False) -> dict:
    text = json.dumps({"country": "France", "topic": "food"}) if template else "France"
    if endpoint == 0:
        return {"model": "x", "messages": [{"role": "user", "content": text}], "stream": stream}
    return {"model": "x", "prompt": text, "stream": stream}


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes(data):
    fuzz_serve_body(data)


@FUZZ
@given(target=targets, value=json_values)
def test_random_json_values(target, value):
    fuzz_serve_body(encode(*target, json.dumps(value).encode()))


@FUZZ
@given(target=targets, stream=st.booleans(), replace=st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=3),
    drop=st.sets(st.sampled_from(FIELDS), max_size=2))
def test_valid_bodies_with_fields_replaced_or_dropped(target, stream, replace, drop):
    body = {**valid_body(*target, stream), **replace}
    for name in drop:
        body.pop(name, None)
    fuzz_serve_body(encode(*target, json.dumps(body).encode()))


@FUZZ
@given(target=targets, content=json_values, role=st.sampled_from(["user", "system", "x"])
       | st.text(max_size=5), extra=st.lists(json_values, max_size=3))
def test_chat_messages_with_random_contents(target, content, role, extra):
    body = {"messages": [{"role": role, "content": content}, *extra]}
    fuzz_serve_body(encode(0, target[1], json.dumps(body).encode()))


@FUZZ
@given(target=targets, stream=st.booleans(), edits=st.lists(
    st.tuples(st.sampled_from(["flip", "cut", "insert"]), st.integers(0, 10_000),
              st.binary(min_size=1, max_size=4)), min_size=1, max_size=4))
def test_valid_bodies_with_bytes_mutated(target, stream, edits):
    raw = bytearray(json.dumps(valid_body(*target, stream)).encode())
    for kind, position, piece in edits:
        at = position % (len(raw) + 1)
        if kind == "flip" and raw:
            raw[at % len(raw)] ^= piece[0] or 1
        elif kind == "cut":
            del raw[at:at + len(piece)]
        else:
            raw[at:at] = piece
    fuzz_serve_body(encode(*target, bytes(raw)))


HOSTILE = {  # name -> (body, status on chat, status on completions)
    # deeper than the JSON parser's recursion limit, yet under the 64 KB body limit
    "deep-array": (b"[" * 20_000 + b"]" * 20_000, 400, 400),
    "deep-messages": (b'{"messages": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", 400, 400),
    "deep-content": (b'{"messages": [{"role": "user", "content": ' + b"[" * 10_000
                     + b"]" * 10_000 + b'}], "prompt": ' + b"[" * 10_000 + b"]" * 10_000
                     + b"}", 400, 400),
    "huge-int-literal": (b'{"seed": ' + b"9" * 5000 + b"}", 400, 400),  # beyond int parsing
    "seed-beyond-int64": (b'{"messages": [{"role": "user", "content": "France"}], '
                          b'"prompt": "France", "seed": 99999999999999999999999}', 400, 400),
    "nan": (b'{"messages": [{"role": "user", "content": "France"}], "prompt": "France", '
            b'"temperature": NaN}', 400, 400),
    "inf": (b'{"messages": [{"role": "user", "content": "France"}], "prompt": "France", '
            b'"max_tokens": Infinity}', 400, 400),
    "content-part-not-text": (b'{"messages": [{"role": "user", "content": '
                              b'[{"type": "text", "text": 5}]}]}', 200, 400),
    "two-prompts": (b'{"prompt": ["a", "b"]}', 400, 400),
    "not-utf8": (b"\xff\xfe\x00{", 400, 400),
    "bom": (b"\xef\xbb\xbf{}", 400, 400),
    "empty": (b"", 400, 400),
    "null": (b"null", 400, 400),
}


@pytest.mark.parametrize("name", HOSTILE, ids=list(HOSTILE))
@pytest.mark.parametrize("endpoint", [0, 1], ids=["chat", "completions"])
def test_known_hostile_bodies(name, endpoint):
    body, *statuses = HOSTILE[name]
    assert fuzz_serve_body(encode(endpoint, 0, body)) == statuses[endpoint]


@pytest.mark.parametrize("endpoint,template", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_valid_bodies_answer_200(endpoint, template, stream):
    """The target is not vacuous: a valid body gets a completion."""
    body = json.dumps(valid_body(endpoint, template, stream)).encode()
    assert fuzz_serve_body(encode(endpoint, template, body)) == 200
