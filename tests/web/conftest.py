"""Fixtures for the workbench tests: the filled store and a client of the app over it."""

from __future__ import annotations

import pytest
from web_fixtures import WebStore, build_store


@pytest.fixture(scope="module")
def web_store(tmp_path_factory) -> WebStore:
    return build_store(tmp_path_factory.mktemp("web"))


@pytest.fixture
def client(web_store, tmp_path_factory):
    """A client that posts like the workbench's own page (CSRF token and Origin). The
    playground may read configs anywhere under this session's temporary folder."""
    from web_page_client import page_test_client

    from promptmill.web import create_app

    app = create_app(web_store.url, root=tmp_path_factory.getbasetemp())
    with page_test_client(app) as c:
        yield c
