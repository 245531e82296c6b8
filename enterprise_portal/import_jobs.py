"""What bounds imports on a server: how many run at once, and the web jobs kept on disk.

An import is the one request whose cost a user chooses (up to the limits of
``foodtrace.imports.Limits``): a file of 100,000 rows keeps a core busy for many
seconds. So at most ``TRACE_IMPORT_CONCURRENCY`` run at once in all, and
``TRACE_IMPORT_CONCURRENCY_PER_ENTERPRISE`` for one enterprise; one more is refused
(429, ``Retry-After``) rather than queued behind them. A slot is an exclusive
``flock`` on a file of ``TRACE_IMPORT_DIR``: shared by every worker process of the
server, and released by the kernel if a process dies holding it.

The portal's page flow (upload, check with progress, confirm) keeps each job in a
directory of its own there: the uploaded bytes and a small JSON state, so that any
worker can show it or confirm it, a restart keeps it, and memory does not grow
with uploads. A job expires after ``TRACE_IMPORT_JOB_TTL_S``; each user keeps at most
``TRACE_IMPORT_JOBS_PER_USER``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from foodtrace.config import Settings
from foodtrace.errors import NotFound
from foodtrace.imports import Limits

RETRY_AFTER_S = 5
"""What a refused import's ``Retry-After`` says: about what a file of a few thousand rows takes."""
RUNNING = ("checking", "importing")
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{16}")


def limits(settings: Settings) -> Limits:
    """The import limits the settings give."""
    return Limits(
        rows=settings.import_max_rows,
        columns=settings.import_max_columns,
        cell_chars=settings.import_max_cell_chars,
    )


def import_dir(settings: Settings) -> Path:
    """``TRACE_IMPORT_DIR``, or one in the temp directory per database: the processes of one
    server share it, and two servers on one host keep apart."""
    default = "foodtrace-imports-" + hashlib.sha256(settings.database_url.encode()).hexdigest()[:12]
    path = Path(settings.import_dir or Path(tempfile.gettempdir()) / default)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


class Busy(Exception):  # noqa: N818 - says what the server is
    """No import slot is free: answer 429 with ``Retry-After``."""

    def __init__(self, scope: str, allowed: int) -> None:
        self.retry_after = RETRY_AFTER_S
        if scope == "enterprise":
            zh = f"本企业已有 {allowed} 个导入正在进行，请稍后再试"
            en = f"at most {allowed} imports at once per enterprise; retry shortly"
        elif scope == "user":
            zh = f"您已有 {allowed} 个导入正在检查，请稍后再试"
            en = f"at most {allowed} import jobs per user are kept while they run"
        else:
            zh = f"服务器同时最多进行 {allowed} 个导入，请稍后再试"
            en = f"at most {allowed} imports at once on this server; retry shortly"
        super().__init__(f"{zh} ({en})")


class Slot:
    """One running import's hold on its slots; :meth:`release` (or ``with``) gives them back."""

    def __init__(self, fds: list[int]) -> None:
        self._fds = fds

    def release(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)  # closing the file releases its flock

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _take(folder: Path, name: str, count: int) -> int | None:
    for i in range(count):
        fd = os.open(folder / f"{name}.{i}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


def take_slot(settings: Settings, enterprise_id: int) -> Slot:
    """Hold a slot of the enterprise and one of the server, or raise :class:`Busy`."""
    folder = import_dir(settings) / "slots"
    folder.mkdir(mode=0o700, exist_ok=True)
    mine = _take(folder, f"enterprise-{enterprise_id}", settings.import_concurrency_per_enterprise)
    if mine is None:
        raise Busy("enterprise", settings.import_concurrency_per_enterprise)
    server = _take(folder, "all", settings.import_concurrency)
    if server is None:
        os.close(mine)
        raise Busy("server", settings.import_concurrency)
    return Slot([mine, server])


@dataclass
class Job:
    """A web import: the state its pages show (the uploaded bytes lie beside it)."""

    id: str
    enterprise_id: int
    username: str
    kind: str
    label: str
    filename: str
    status: str = "checking"  # checking checked importing done failed refused
    done: int = 0
    total: int = 0
    result: dict[str, Any] | None = None
    message: str = ""
    created: float = field(default_factory=time.time)


class Jobs:
    """The web import jobs in ``TRACE_IMPORT_DIR``/jobs, one directory each."""

    def __init__(self, settings: Settings) -> None:
        self.root = import_dir(settings) / "jobs"
        self.root.mkdir(mode=0o700, exist_ok=True)
        self.ttl = settings.import_job_ttl_s
        self.per_user = settings.import_jobs_per_user

    def _dir(self, job_id: str) -> Path:
        if not _JOB_ID.fullmatch(job_id):
            raise NotFound("no such import")
        return self.root / job_id

    def _load(self, folder: Path) -> Job | None:
        try:
            return Job(**json.loads((folder / "job.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def _all(self) -> list[tuple[Path, Job | None]]:
        return [(d, self._load(d)) for d in self.root.iterdir() if d.is_dir()]

    def _expired(self, job: Job | None, now: float) -> bool:
        if job is None:
            return True  # half-written or damaged: nothing was imported from it
        age = now - job.created
        # a running check is left to finish, unless its process has long gone
        return age > self.ttl * (10 if job.status in RUNNING else 1)

    def sweep(self) -> list[Job]:
        """Remove expired jobs; the jobs left."""
        now, left = time.time(), []
        for folder, job in self._all():
            if self._expired(job, now):
                shutil.rmtree(folder, ignore_errors=True)
            elif job is not None:
                left.append(job)
        return left

    def create(
        self, *, enterprise_id: int, username: str, kind: str, label: str, filename: str,
        content: bytes,
    ) -> Job:  # fmt: skip
        """Keep a new upload; the user's oldest finished jobs go first past the cap."""
        mine = sorted((j for j in self.sweep() if j.username == username), key=lambda j: j.created)
        while len(mine) >= self.per_user:
            done = next((j for j in mine if j.status not in RUNNING), None)
            if done is None:
                raise Busy("user", self.per_user)
            shutil.rmtree(self.root / done.id, ignore_errors=True)
            mine.remove(done)
        job = Job(secrets.token_urlsafe(12), enterprise_id, username, kind, label, filename)
        folder = self._dir(job.id)
        folder.mkdir(mode=0o700)
        (folder / "upload").write_bytes(content)
        self.save(job)
        return job

    def get(self, job_id: str, enterprise_id: int) -> Job:
        """The job, if it exists, has not expired and is the enterprise's; else NotFound."""
        folder = self._dir(job_id)
        job = self._load(folder) if folder.is_dir() else None
        if job is None or job.enterprise_id != enterprise_id or self._expired(job, time.time()):
            raise NotFound("no such import")
        return job

    def remove(self, job: Job) -> None:
        shutil.rmtree(self._dir(job.id), ignore_errors=True)

    def content(self, job: Job) -> bytes:
        return (self._dir(job.id) / "upload").read_bytes()

    def save(self, job: Job) -> None:
        """Write the job's state whole (a reader never sees half of it)."""
        folder = self._dir(job.id)
        tmp = folder / f"job.json.{secrets.token_hex(4)}"
        with contextlib.suppress(FileNotFoundError):  # expired and removed meanwhile
            tmp.write_text(json.dumps(asdict(job), ensure_ascii=False, default=str), "utf-8")
            os.replace(tmp, folder / "job.json")
