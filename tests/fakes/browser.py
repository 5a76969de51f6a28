"""Headless Chromium driven over the Chrome DevTools Protocol, for tests of the dashboard.

No browser automation package: Debian's ``/usr/bin/chromium`` runs headless with
``--remote-debugging-port=0``; the port it picked is read from ``DevToolsActivePort`` in its
profile directory, and the protocol's JSON messages go over the ``websockets`` package the
daemon depends on anyway. One WebSocket to the browser; each page is a target attached with
``flatten``, so its commands carry a ``sessionId``.

The browser reaches loopback only: host names other than localhost do not resolve, and any
other address goes to a proxy on a closed loopback port (Chromium never proxies loopback).
"""

import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-port=0",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--proxy-server=127.0.0.1:9",
    "--window-size=1280,1000",
)
# A cold first start on a busy CI box (fontconfig caches, a fresh profile) has taken over 30 s.
START_TIMEOUT_S = 90.0


def require_chromium() -> None:
    """Skip the test when Chromium is absent, unless in CI, where it must be there."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")


class BrowserError(AssertionError):
    """The browser answered a command with an error, or a page threw."""


@dataclass
class Page:
    """One tab: navigate, evaluate JavaScript, wait for a condition, take a screenshot."""

    browser: "Browser"
    session: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command to this page; return its result."""
        return await self.browser.send(method, params, session=self.session)

    async def navigate(self, url: str) -> None:
        """Load ``url`` and wait until the document has loaded."""
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    async def evaluate(self, expression: str) -> Any:
        """Return the value of ``expression`` (awaited if it is a promise)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Return the first truthy value of ``expression``; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        value: Any = None
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"{expression!r} stayed {value!r} for {timeout} s: {self.errors}")

    async def text(self, selector: str) -> str:
        """Return the text of the first element ``selector`` matches ("" when none)."""
        found = await self.evaluate(
            f"document.querySelector({json.dumps(selector)})?.textContent ?? ''"
        )
        return str(found).strip()

    async def texts(self, selector: str) -> list[str]:
        """Return the text of every element ``selector`` matches."""
        found = await self.evaluate(
            f"[...document.querySelectorAll({json.dumps(selector)})].map(e => e.textContent.trim())"
        )
        return [str(t) for t in found]

    async def screenshot(self, path: Path, height: int | None = None) -> Path:
        """Save the page as a PNG at ``path``: the whole of it, or its top ``height`` pixels."""
        whole = height is None
        if height is None:
            height = await self.evaluate("Math.ceil(document.documentElement.scrollHeight)")
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=int(height or 0),
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=whole)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        """Keep what the page threw or logged as an error, and every URL it requested."""
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(str(details.get("exception", {}).get("description", details)))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a)) for a in params.get("args", [])))
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])


@dataclass
class Browser:
    """The browser's DevTools connection: commands by id, events to their pages."""

    connection: ClientConnection
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    pages: dict[str, Page] = field(default_factory=dict)
    ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        """Send a command; return its result or raise its error."""
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        answer = asyncio.get_running_loop().create_future()
        self.pending[number] = answer
        await self.connection.send(json.dumps(message))
        async with asyncio.timeout(30):
            return await answer

    async def new_page(self) -> Page:
        """Open a blank tab with page, runtime and network events on."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(browser=self, session=attached["sessionId"])
        self.pages[page.session] = page
        for domain in ("Page", "Runtime", "Network"):
            await page.send(f"{domain}.enable")
        return page

    async def read(self) -> None:
        """Hand each answer to its command and each event to its page, until closed."""
        async for text in self.connection:
            message = json.loads(text)
            if "id" in message:
                answer = self.pending.pop(message["id"], None)
                if answer is None or answer.done():
                    continue
                if "error" in message:
                    answer.set_exception(BrowserError(f"{message['error']}"))
                else:
                    answer.set_result(message.get("result", {}))
            elif (page := self.pages.get(message.get("sessionId", ""))) is not None:
                page.on_event(message["method"], message.get("params", {}))


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Browser]:
    """Run headless Chromium with its profile in ``profile``; yield its DevTools connection."""
    require_chromium()
    with _fresh_profile(profile).open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(CHROMIUM),
            *FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its helpers share its process group, stopped with it
        )
        try:
            url = await _devtools_url(profile, process, log_path=Path(log.name))
            async with connect(url, max_size=None, ping_interval=None) as connection:
                browser = Browser(connection=connection)
                reader = asyncio.create_task(browser.read(), name="cdp-reader")
                try:
                    yield browser
                finally:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
        finally:
            await _stop(process)


def _fresh_profile(profile: Path) -> Path:
    """Make the profile directory, without a previous run's port file; return the log's path."""
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "DevToolsActivePort").unlink(missing_ok=True)
    return profile.parent / f"{profile.name}.log"


async def _devtools_url(
    profile: Path, process: asyncio.subprocess.Process, *, log_path: Path
) -> str:
    """Wait for ``DevToolsActivePort`` (its port, then its browser path); return the URL."""
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise AssertionError(f"chromium exited with {process.returncode}: {_tail(log_path)}")
        lines = port_file.read_text().split() if port_file.exists() else []
        if len(lines) >= 2:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"chromium did not open its DevTools port in {START_TIMEOUT_S} s: {_tail(log_path)}"
    )


def _tail(log_path: Path, lines: int = 15) -> str:
    """The last lines of the browser's log, for a failure's message."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Stop the browser's process group: SIGTERM, SIGKILL if it lingers, then any helper."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await process.wait()
                break
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
