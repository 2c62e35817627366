"""The web workbench: browse runs, compare prompts, watch optimizations, rate outputs.

``create_app`` builds the FastAPI app; ``promptmill ui`` serves it. FastAPI is imported only
when the app is built, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app"]


if TYPE_CHECKING:  # type checkers see the real signature
    from .app import create_app
else:
    def create_app(store_url: str | None = None, token: str | None = None, **options: Any):
        """See :func:`promptmill.web.app.create_app` (root, host, port, allowed_hosts)."""
        from .app import create_app as build

        return build(store_url=store_url, token=token, **options)
