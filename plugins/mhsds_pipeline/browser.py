"""A headless Chromium with the network cut off, for looking at our HTML outputs as a reader would.

Used by the Data Docs browser test and ``scripts/screenshots.py``. It drives Debian's
``/usr/bin/chromium`` (``MHSDS_CHROMIUM`` overrides the path) through the ``playwright``
package (a dev dependency, imported only when a browser is opened; no ``playwright install``).
Every request is routed: ``file:`` and ``data:`` load, anything else is aborted and recorded,
so a page that would need the internet shows it (and a test can assert nothing was attempted).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LOCAL_SCHEMES = ("file:", "data:")


def chromium_path() -> Path:
    """Where the browser is expected (it may be absent: see :func:`chromium_available`)."""
    return Path(os.environ.get("MHSDS_CHROMIUM") or DEFAULT_CHROMIUM)


def chromium_available() -> bool:
    path = chromium_path()
    return path.is_file() and os.access(path, os.X_OK)


@dataclass
class OfflineBrowser:
    """An open page, and what it tried and failed to do."""

    context: Any  # playwright BrowserContext
    page: Any  # playwright Page
    blocked: list[str] = field(default_factory=list)  # requests that would have left the machine
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)  # local files that did not load

    def watch(self, page: Any) -> Any:
        """Record console errors, script errors and failed loads of ``page`` (new tabs too)."""
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        page.on(
            "requestfailed",
            lambda r: (
                None
                if r.url in self.blocked
                else self.failed_requests.append(f"{r.url}: {r.failure or 'failed'}")
            ),
        )
        return page


@contextmanager
def offline_browser(width: int = 1280, height: int = 900) -> Iterator[OfflineBrowser]:
    """A fresh Chromium profile and page that can load only local files."""
    if not chromium_available():
        raise FileNotFoundError(f"no Chromium at {chromium_path()} (set MHSDS_CHROMIUM to its path)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="mhsds-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=str(chromium_path()),
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": width, "height": height},
            service_workers="block",
        )
        try:
            session = OfflineBrowser(context, None)

            def route(r) -> None:
                url = r.request.url
                if url.startswith(LOCAL_SCHEMES):
                    r.continue_()
                else:
                    session.blocked.append(url)
                    r.abort("internetdisconnected")

            context.route("**/*", route)
            opened = list(context.pages)  # a persistent context starts with one blank page
            for page in opened:
                session.watch(page)
            context.on("page", session.watch)
            session.page = opened[0] if opened else context.new_page()
            yield session
        finally:
            context.close()


__all__ = ["CHROMIUM_ARGS", "OfflineBrowser", "chromium_available", "chromium_path", "offline_browser"]
