"""Heavy work within one budget for the whole server, not per process.

- Slots: N slot files under the state directory; a job holds one with a non-blocking `flock`. Every
  worker process (and every replica mounting the same directory) sees the same N, and the kernel
  releases a slot when its holder dies, so a crashed worker cannot leak budget. No slot: 429 with
  Retry-After at once, never after a timeout.
- Per client: at most `client_jobs` slots at once (slot files per client bucket), and a token bucket
  of `rate_per_minute` expensive requests after a burst of `rate_burst` (a small SQLite table in the
  state directory, shared by the processes like the slots).

Why files and not a server (Redis): the default deployment is one machine, and a directory needs
nothing running; across machines the same files on a shared volume work (flock over NFSv4 is
emulated with POSIX locks), and nginx's `limit_req` covers the per-client rate at the edge.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ninja_core.checkpoints import FileLock
from ninja_core.i18n import Text, german, tr

from .settings import Settings

log = logging.getLogger("app")
Kind = Literal["heavy", "stream"]
CLIENT_BUCKETS = 4096  # client slot files are per hash bucket: bounded in number whatever the clients


class Busy(RuntimeError):
    """Too much heavy work at once (the server's or this client's share); try again after `retry_after` s."""

    def __init__(self, message: str, retry_after: int = 2, code: str = "busy") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.code = code


class RateLimited(Busy):
    """This client made too many expensive requests lately."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retry_after, code="rate_limited")


german({
    "this server runs at most {n} heavy jobs at once (trainings, large runs), and all are in use; try again in {s} s":
        "dieser Server führt höchstens {n} rechenintensive Aufträge gleichzeitig aus (Trainings, große Läufe), und "
        "alle sind belegt; versuch es in {s} s wieder",
    "this server runs at most {n} training streams at once, and all are in use; try again in about {s} s":
        "dieser Server führt höchstens {n} Trainings gleichzeitig aus, und alle sind belegt; versuch es in etwa {s} s "
        "wieder",
    "you already have {n} heavy jobs or trainings running, the most one client may run at once; try again "
    "when one has finished": "Du hast schon {n} rechenintensive Aufträge oder Trainings laufen, mehr darf "
                             "ein Client nicht gleichzeitig; versuch es wieder, wenn einer fertig ist",
    "too many expensive requests from you: at most {burst} at once and {rate} a minute; try again in {s} s":
        "Zu viele aufwendige Anfragen von dir: höchstens {burst} auf einmal und {rate} pro Minute; "
        "versuch es in {s} s wieder",
})


class Slots:
    """`limit` slot files `<name>-<i>.lock` in `directory`; holding a slot = an flock on its file."""

    def __init__(self, directory: Path, name: str, limit: int) -> None:
        self.directory, self.name, self.limit = directory, name, limit
        directory.mkdir(parents=True, exist_ok=True)
        self._next = 0

    def try_acquire(self) -> FileLock | None:
        """A free slot, or None at once when all are held (by any process)."""
        start = self._next  # start where the last search ended: fewer failed flock calls under load
        for i in range(self.limit):
            n = (start + i) % self.limit
            lock = FileLock.acquire(self.directory / f"{self.name}-{n}.lock")
            if lock is not None:
                self._next = (n + 1) % self.limit
                return lock
        return None

    def seconds_until_free(self, default: int) -> int:
        """When the first held slot expects to be free (its holder notes its expected end time in the
        file), in whole seconds within 1..60 (the page waits up to 60 s and then asks again); `default`
        when no holder said."""
        ends = []
        now = time.time()
        for n in range(self.limit):
            with contextlib.suppress(OSError, ValueError):
                ends.append(float((self.directory / f"{self.name}-{n}.lock").read_text() or "nan") - now)
        ends = [e for e in ends if math.isfinite(e)]
        return default if not ends else int(min(60, max(1, math.ceil(min(ends)))))


class RateLimiter:
    """Token buckets per client in SQLite (WAL): `burst` tokens, refilled at `per_minute` a minute.

    Fails open: if the table cannot be used (disk full, locked for over a second), the request is let
    through and the problem logged -- a broken rate limiter must not take the whole site down."""

    def __init__(self, path: Path, per_minute: float, burst: int) -> None:
        self.path, self.rate, self.burst = path, per_minute / 60.0, burst
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._calls = 0

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, timeout=1.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # losing the last second of counts in a power cut is fine
            db.execute("CREATE TABLE IF NOT EXISTS buckets (client TEXT PRIMARY KEY, tokens REAL, updated REAL)")
            self._db = db
        return self._db

    def take(self, client: str) -> float:
        """Take one token for `client`: 0.0 when allowed, else the seconds until a token is there."""
        now = time.time()
        with self._lock:
            try:
                db = self._connect()
                db.execute("BEGIN IMMEDIATE")
                try:
                    row = db.execute("SELECT tokens, updated FROM buckets WHERE client = ?", (client,)).fetchone()
                    tokens = float(self.burst) if row is None else min(self.burst, row[0] + max(0.0, now - row[1]) * self.rate)
                    wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
                    if wait == 0.0:
                        tokens -= 1.0
                    db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?)", (client, tokens, now))
                    self._calls += 1
                    if self._calls % 1000 == 0:  # forget clients idle for an hour (their buckets are full again)
                        db.execute("DELETE FROM buckets WHERE updated < ?", (now - 3600,))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                return wait
            except sqlite3.Error as exc:
                log.warning("rate limiter unavailable (%s); letting the request through", exc)
                return 0.0

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


@dataclass
class Ticket:
    """The slots a job holds; release() frees them (idempotent)."""

    locks: list[FileLock] = field(default_factory=list)

    def release(self) -> None:
        while self.locks:
            self.locks.pop().release()


def client_key(client: str) -> str:
    return hashlib.sha256(client.encode()).hexdigest()[:16]


class Budget:
    """What the whole server may run at once, and what one client may ask for."""

    def __init__(self, settings: Settings, directory: Path) -> None:
        self.settings = settings
        slots = directory / "slots"
        self.heavy = Slots(slots, "heavy", settings.heavy_jobs)
        self.streams = Slots(slots, "stream", settings.max_train_streams)
        self.slots_dir = slots
        self.rate = RateLimiter(directory / "ratelimit.sqlite", settings.rate_per_minute, settings.rate_burst)

    def admit(self, client: str, kind: Kind, seconds: float, retry_after: int = 5) -> Ticket:
        """Slots for one heavy job (or one training stream) of `client` expected to take `seconds`,
        and one token of its rate. Raises Busy (the server's slots, or the client's, are all held) or
        RateLimited, at once; Retry-After is when the first running job expects to end."""
        ticket = Ticket()
        try:
            pool = self.heavy if kind == "heavy" else self.streams
            lock = pool.try_acquire()
            if lock is None:
                retry_after = pool.seconds_until_free(retry_after)
                message: Text
                if kind == "heavy":
                    message = tr("this server runs at most {n} heavy jobs at once (trainings, large runs), and all are "
                                 "in use; try again in {s} s", n=pool.limit, s=retry_after)
                else:
                    message = tr("this server runs at most {n} training streams at once, and all are in use; try again "
                                 "in about {s} s", n=pool.limit, s=retry_after)
                raise Busy(message, retry_after)
            lock.note(f"{time.time() + seconds:.3f}")
            ticket.locks.append(lock)
            bucket = int(client_key(client), 16) % CLIENT_BUCKETS
            mine = Slots(self.slots_dir, f"client-{bucket:03x}", self.settings.client_jobs).try_acquire()
            if mine is None:
                raise Busy(tr("you already have {n} heavy jobs or trainings running, the most one client may run at "
                              "once; try again when one has finished", n=self.settings.client_jobs), retry_after)
            ticket.locks.append(mine)
            self.take_rate(client)
        except BaseException:
            ticket.release()
            raise
        return ticket

    def take_rate(self, client: str) -> None:
        """One token of the client's rate without a slot (a gradcheck: bounded by its thread pool)."""
        wait = self.rate.take(client)
        if wait > 0:
            s = max(1, math.ceil(wait))
            raise RateLimited(tr("too many expensive requests from you: at most {burst} at once and {rate} a minute; "
                                 "try again in {s} s", burst=self.settings.rate_burst,
                                 rate=f"{self.settings.rate_per_minute:g}", s=s), s)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.rate.close()
