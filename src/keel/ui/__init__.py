"""The web UI: server-rendered pages over the same store as the REST API, mounted under ``/ui`` by ``keel server``.

Pages are HTML from Jinja2 templates (autoescaped: user data is text, never markup) with plain forms and links, so
every view, its filters and its selections are a URL that can be shared and reloaded. Charts are drawn by uPlot, a
small canvas library vendored into the package (``scripts/vendor_ui.py``): nothing is fetched from elsewhere and
installing keel needs no Node toolchain. Who may see and do what is the server's decision (``keel.server.policy``,
``keel.server.auth``); in a browser the token travels in an HttpOnly, SameSite=Strict cookie set by ``/ui/login``.
"""

from __future__ import annotations

from keel.ui.app import install_ui

__all__ = ["install_ui"]
