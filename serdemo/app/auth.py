"""Optional login: who may label, adapt, import and export; prediction stays public.

Accounts come from ``SERDEMO_AUTH=user:password,user2:password2`` or ``SERDEMO_AUTH_FILE`` (one
``user:password`` per line, ``#`` comments). A browser tab or API client logs in once; its Gradio
session is then tied to the user until it ends or :data:`SESSION_SECONDS` pass. Gradio's own
``launch(auth=...)`` would lock the whole app, predict included, which a public Space should not.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from pathlib import Path

SESSION_SECONDS = 12 * 3600
_ITERATIONS = 100_000  # PBKDF2 rounds: a guess costs ~50 ms, a login is unnoticeable
_FAILURE_DELAY_S = 0.5  # after a wrong password, slows guessing further
_MAX_SESSIONS = 10_000


class AuthError(ValueError):
    """A login that failed, or an action that needs one; the message says what to do."""


class Accounts:
    """Users and salted PBKDF2 hashes of their passwords; the passwords themselves are not kept.

    Example:
        >>> accounts = Accounts.parse("ada:secret, bob:hunter2")
        >>> accounts.check("ada", "secret"), accounts.check("ada", "nope"), accounts.check("eve", "x")
        (True, False, False)

    """

    def __init__(self, users: dict[str, str]) -> None:
        if not users:
            raise AuthError("no accounts given: use SERDEMO_AUTH=user:password[,user2:password2]")
        self._salt = os.urandom(16)
        self._hashes = {user: self._hash(password) for user, password in users.items()}
        self._dummy = self._hash("")  # unknown users cost the same time as known ones

    @classmethod
    def parse(cls, text: str) -> Accounts:
        """``user:password`` items separated by commas or new lines (``#`` starts a comment line)."""
        users: dict[str, str] = {}
        for raw in text.replace(",", "\n").splitlines():
            item = raw.strip()
            if not item or item.startswith("#"):
                continue
            user, sep, password = item.partition(":")
            user = user.strip()
            if not sep or not user or not password:
                raise AuthError(f"account {user or item[:20]!r}: expected user:password")
            if len(user) > 64 or not user.isprintable():
                raise AuthError(f"account {user[:20]!r}: a user name is at most 64 printable characters")
            users[user] = password
        return cls(users)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Accounts | None:
        """Accounts from ``SERDEMO_AUTH`` or the file ``SERDEMO_AUTH_FILE``; None if neither is set."""
        environ = dict(os.environ if environ is None else environ)
        if environ.get("SERDEMO_AUTH", "").strip():
            return cls.parse(environ["SERDEMO_AUTH"])
        if environ.get("SERDEMO_AUTH_FILE", "").strip():
            return cls.parse(Path(environ["SERDEMO_AUTH_FILE"]).read_text(encoding="utf-8"))
        return None

    @property
    def users(self) -> list[str]:
        """The user names, sorted."""
        return sorted(self._hashes)

    def check(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s, in time that does not depend on which part is wrong."""
        expected = self._hashes.get(user, self._dummy)
        ok = hmac.compare_digest(expected, self._hash(password or ""))
        return ok and user in self._hashes

    def _hash(self, password: str) -> bytes:
        return hashlib.pbkdf2_hmac("sha256", password.encode(), self._salt, _ITERATIONS)


class Sessions:
    """Which Gradio session (browser tab or API client) belongs to which logged-in user."""

    def __init__(self, accounts: Accounts, lifetime_s: float = SESSION_SECONDS) -> None:
        self.accounts = accounts
        self.lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._users: dict[str, tuple[str, float]] = {}  # session -> (user, expiry)

    def login(self, session: str | None, user: str, password: str) -> str:
        """Tie ``session`` to ``user`` if the password is right; returns the user name."""
        if not session:
            raise AuthError("this connection has no session; reload the page")
        user = (user or "").strip()
        if not self.accounts.check(user, password or ""):
            time.sleep(_FAILURE_DELAY_S)
            raise AuthError("wrong user name or password")
        with self._lock:
            now = time.monotonic()
            self._users = {s: v for s, v in self._users.items() if v[1] > now}
            if len(self._users) >= _MAX_SESSIONS:
                raise AuthError("too many sessions are logged in; try again later")
            self._users[session] = (user, now + self.lifetime_s)
        return user

    def logout(self, session: str | None) -> None:
        """End ``session``'s login (nothing happens if it had none)."""
        with self._lock:
            self._users.pop(session or "", None)

    def user(self, session: str | None) -> str | None:
        """The user ``session`` is logged in as, or None."""
        with self._lock:
            entry = self._users.get(session or "")
            if entry is None or entry[1] <= time.monotonic():
                self._users.pop(session or "", None)
                return None
            return entry[0]
