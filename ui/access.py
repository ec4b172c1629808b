"""Who may use the page and change its articles, and logins slowed down after failures."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import threading
import time
from collections.abc import Awaitable, Callable

from rag import Settings

# Failed logins remembered this long; each one doubles the wait before the next answer.
FAILURE_WINDOW_S = 600.0
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0
MAX_FAILURES_KEPT = 16


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Access:
    """The page's access rules, from ``ui`` settings and the address it is served on."""

    def __init__(self, settings: Settings, host: str) -> None:
        self.ui = settings.ui
        self.host = host
        self.accounts: dict[str, str] = {}
        for user, secret in ((self.ui.username, self.ui.password), (self.ui.admin_username, self.ui.admin_password)):
            if user and secret:
                self.accounts[user] = secret.get_secret_value()
        self._failures: list[float] = []
        self._lock = threading.Lock()
        # Logins are answered one at a time, so guesses sent in parallel wait for each other.
        self._turn: asyncio.Lock | None = None

    @property
    def login(self) -> bool:
        return bool(self.accounts)

    def may_change_articles(self, username: str | None) -> bool:
        """Whether this visitor may add or remove articles."""
        mode = self.ui.uploads
        if mode == "auto" and not self.ui.admin_username:
            return is_loopback(self.host) or self.login
        if mode in ("auto", "admin"):
            return username is not None and username == self.ui.admin_username
        return mode == "on"

    def warnings(self) -> list[str]:
        """What a person starting the page should know about its exposure."""
        if is_loopback(self.host) or self.login:
            return []
        uploads = "off" if not self.may_change_articles(None) else "ON for everyone (ui.uploads)"
        return [
            f"the page is served on {self.host} without a login: anyone who can reach this address can use it "
            f"(set RAG_UI__USERNAME and RAG_UI__PASSWORD). Adding and removing articles from the page is {uploads}."
        ]

    def delay(self) -> float:
        """Seconds a wrong password's answer waits: doubling with recent failures, up to a limit."""
        now = time.monotonic()
        with self._lock:
            # Only the recent ones count, and no more than the limit needs (the list stays short).
            recent = [t for t in self._failures if now - t < FAILURE_WINDOW_S]
            self._failures = recent[-MAX_FAILURES_KEPT:]
            n = len(self._failures)
        return 0.0 if n == 0 else min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (n - 1))

    def check(self, username: str, password: str) -> bool:
        expected = self.accounts.get(username)
        ok = expected is not None and hmac.compare_digest(expected.encode(), password.encode())
        if not ok:
            with self._lock:
                self._failures.append(time.monotonic())
        return ok

    def auth(self) -> Callable[[str, str], Awaitable[bool]] | None:
        """Gradio's login check: a wrong password is answered only after the current delay
        (every guess waits longer; other visitors of the page are not held up)."""
        if not self.login:
            return None

        async def check(username: str, password: str) -> bool:
            if self._turn is None:
                self._turn = asyncio.Lock()
            async with self._turn:  # parallel guesses queue here: each waits for the ones before
                wait = self.delay()
                ok = self.check(username, password)
                if not ok:
                    await asyncio.sleep(max(wait, FIRST_DELAY_S))
                return ok

        return check
