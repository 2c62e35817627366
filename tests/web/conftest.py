"""Fixtures for the workbench tests: the filled store and a client of the app over it."""

from __future__ import annotations

import pytest
from web_fixtures import WebStore, build_store


@pytest.fixture(scope="module")
def web_store(tmp_path_factory) -> WebStore:
    return build_store(tmp_path_factory.mktemp("web"))


@pytest.fixture
def client(web_store):
    from fastapi.testclient import TestClient

    from promptmill.web import create_app

    with TestClient(create_app(web_store.url)) as c:
        yield c
