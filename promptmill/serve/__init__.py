"""Serve a stored prompt version behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

FastAPI and uvicorn are imported only by :func:`create_app` and the CLI, so importing this
package stays cheap.
"""

from __future__ import annotations

from .render import RequestError, ServedPrompt, load_served_prompt

__all__ = ["RequestError", "ServedPrompt", "create_app", "load_served_prompt"]


def create_app(*args, **kwargs):
    """The FastAPI app; see :func:`promptmill.serve.app.create_app`."""
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)
