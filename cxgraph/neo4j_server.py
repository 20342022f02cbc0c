"""The project-managed Neo4j server: installed from Maven Central, run as a child JVM.

Install: ``mvn dependency:copy-dependencies`` on ``cxgraph/neo4j/pom.xml`` into
``<cache>/neo4j-<version>/lib``; the APOC jars move to ``plugins/`` (procedures
load only from there). The install is reused when its ``.complete`` marker is
present and rebuilt otherwise.

Run: the JVM that ``bin/neo4j`` would start, started directly on 127.0.0.1 with
auth on and a generated password kept in ``WS/neo4j/password`` (mode 0600).
Data, logs and the pid/port record live in ``WS/neo4j/``, private to its owner
(directories 0700, files 0600; the JVM runs with umask 077). Analyst safety in
the server's configuration: only the APOC in ``APOC_ALLOWLIST`` is loaded, no
file URLs in LOAD CSV, APOC file import/export off, and one transaction may use
at most ``[neo4j] transaction_memory_mb`` of heap.

``connect(ws)`` is what everything else calls: it honours ``NEO4J_URI`` /
``NEO4J_USER`` / ``NEO4J_PASSWORD`` (or ``[neo4j] uri`` in the config) to use an
existing Neo4j 5, and otherwise starts the managed server if it is not running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

from cxgraph.config import Neo4jParams
from cxgraph.errors import Neo4jServerError
from cxgraph.workspace import Workspace, atomic_write_bytes

log = logging.getLogger(__name__)

SUPPORTED_JAVA = (17, 21)  # Neo4j 5.26 LTS runs on these, not on 25
# APOC the managed server loads (functions and read-only procedures on values and the
# graph); everything else in APOC is not loaded. Built-in db.*/dbms.* are unaffected.
APOC_ALLOWLIST = tuple(f"apoc.{ns}.*" for ns in (
    "agg", "algo", "any", "bitwise", "coll", "convert", "create", "date", "diff", "hashing",
    "label", "map", "math", "meta", "neighbors", "node", "nodes", "number", "path", "rel",
    "scoring", "stats", "temporal", "text", "util")) + ("apoc.version",)
APOC_CONF = "apoc.import.file.enabled=false\napoc.export.file.enabled=false\n"
JVM_OPENS = [
    f"--add-opens=java.base/{p}=ALL-UNNAMED"
    for p in ("java.nio", "java.io", "sun.nio.ch", "java.lang", "java.util", "java.util.concurrent")
]


@dataclasses.dataclass(frozen=True)
class Connection:
    """Where a Neo4j 5 server answers Bolt, and how to log in."""

    uri: str
    user: str
    password: str
    managed: bool = False

    def driver(self, max_pool: int = 32, check: bool = True,
               retry_s: float | None = None):  # -> neo4j.Driver
        """The one driver factory. With ``check``, the server must answer and accept the
        password, else a clear ``Neo4jServerError`` says what to do. ``retry_s``: how long
        managed transactions retry transient failures (driver default 30 s)."""
        import neo4j
        import neo4j.exceptions

        extra = {} if retry_s is None else {"max_transaction_retry_time": float(retry_s)}
        drv = neo4j.GraphDatabase.driver(
            self.uri, auth=(self.user, self.password), max_connection_pool_size=max_pool,
            connection_timeout=10.0,
            notifications_min_severity=neo4j.NotificationMinimumSeverity.OFF, **extra,
        )
        if not check:
            return drv
        try:
            drv.verify_connectivity()
        except neo4j.exceptions.AuthError as e:
            drv.close()
            raise Neo4jServerError(
                f"Neo4j at {self.uri} refused user {self.user!r}: wrong password "
                "(check NEO4J_PASSWORD or the workspace's neo4j/password)"
            ) from e
        except (neo4j.exceptions.ServiceUnavailable, OSError) as e:
            drv.close()
            raise Neo4jServerError(
                f"no Neo4j answers at {self.uri} ({e}); start it with `cxgraph neo4j start` "
                "or set NEO4J_URI/NEO4J_USER/NEO4J_PASSWORD"
            ) from e
        return drv

    def __repr__(self) -> str:  # never log the password
        return f"Connection(uri={self.uri!r}, user={self.user!r}, managed={self.managed})"


def cache_dir() -> Path:
    """Where heavy downloads live, outside any clone: ``$CXGRAPH_CACHE`` or ``~/.cache/cxgraph``."""
    env = os.environ.get("CXGRAPH_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base if env else base / "cxgraph"


# --- Java ------------------------------------------------------------------


def find_java() -> tuple[Path, int]:
    """A Java 17 or 21 runtime: ``$JAVA_HOME``, then ``java`` on PATH, then /usr/lib/jvm."""
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    if shutil.which("java"):
        candidates.append(Path(shutil.which("java")))  # type: ignore[arg-type]
    jvm_dir = Path("/usr/lib/jvm")
    candidates += sorted(jvm_dir.glob("*/bin/java")) if jvm_dir.exists() else []
    seen = []
    for java in candidates:
        major = _java_major(java)
        seen.append(f"{java} (Java {major})")
        if major in SUPPORTED_JAVA:
            return java, major
    raise Neo4jServerError(
        "Neo4j 5.26 needs a Java 17 or 21 runtime; found "
        + (", ".join(seen) if seen else "no java at all")
        + ". Install OpenJDK 17 (e.g. `apt-get install openjdk-17-jre-headless`) "
        "or point JAVA_HOME at one."
    )


def _java_major(java: Path) -> int | None:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


# --- install -----------------------------------------------------------------


def install(version: str, force: bool = False) -> Path:
    """Assemble Neo4j Community ``version`` + APOC into the cache; return its home."""
    home = cache_dir() / f"neo4j-{version}"
    if (home / ".complete").exists() and not force:
        return home
    mvn = shutil.which("mvn")
    if not mvn:
        raise Neo4jServerError(
            "Maven (`mvn`) is needed once to fetch Neo4j from Maven Central and is not on PATH; "
            "install it (e.g. `apt-get install maven`) or set NEO4J_URI to an existing Neo4j 5."
        )
    java, _ = find_java()
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".neo4j-{version}-", dir=home.parent))
    try:
        pom = resources.files("cxgraph") / "neo4j" / "pom.xml"
        with resources.as_file(pom) as pom_path:
            cmd = [
                mvn, "-B", "-q", "-f", str(pom_path), f"-Dneo4j.version={version}",
                "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
                "-DincludeScope=runtime", f"-DoutputDirectory={staging / 'lib'}",
            ]
            log.info("fetching Neo4j %s + APOC from Maven Central into %s", version, home)
            env = {**os.environ, "JAVA_HOME": str(java.parent.parent)}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise Neo4jServerError(
                f"Maven could not fetch Neo4j {version} (exit {proc.returncode}). Is Maven Central "
                f"reachable, and is {version} published there with APOC?\n{tail}"
            )
        plugins = staging / "plugins"
        plugins.mkdir()
        for jar in (staging / "lib").glob("apoc-*.jar"):
            jar.rename(plugins / jar.name)
        jars = sorted(p.name for p in (staging / "lib").glob("*.jar"))
        if not any(j.startswith("neo4j-server-") for j in jars) or not any(plugins.iterdir()):
            raise Neo4jServerError(
                f"Neo4j install in {staging} is incomplete: no server or APOC jar")
        (staging / ".complete").write_text("\n".join(jars) + "\n")
        if home.exists():
            shutil.rmtree(home)
        staging.rename(home)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return home


# --- the managed server --------------------------------------------------------


class ManagedServer:
    """One Neo4j server whose state lives in ``state_dir`` (normally ``WS/neo4j``)."""

    def __init__(self, state_dir: Path, params: Neo4jParams):
        self.dir = Path(state_dir)
        self.params = params

    # paths
    @property
    def password_file(self) -> Path:
        return self.dir / "password"

    @property
    def record_file(self) -> Path:
        return self.dir / "server.json"

    @property
    def console_log(self) -> Path:
        return self.dir / "logs" / "console.log"

    def record(self) -> dict[str, Any] | None:
        if not self.record_file.exists():
            return None
        return json.loads(self.record_file.read_text())

    def password(self) -> str:
        if not self.password_file.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            # never starting with '-': neo4j-admin would read it as an option
            word = "cx" + secrets.token_urlsafe(24)
            atomic_write_bytes(self.password_file, word.encode(), mode=0o600)
        return self.password_file.read_text().strip()

    def pid(self) -> int | None:
        rec = self.record()
        if rec and _alive(rec["pid"]):
            return rec["pid"]
        return None

    def connection(self) -> Connection:
        rec = self.record()
        if not rec or not _alive(rec["pid"]):
            raise Neo4jServerError(
                f"the managed Neo4j server of {self.dir.parent} is not running; "
                f"start it with `cxgraph neo4j start --workspace {self.dir.parent}`"
            )
        return Connection(rec["uri"], "neo4j", self.password(), managed=True)

    def start(self) -> Connection:
        """Start the server (no-op when running); return once Bolt answers."""
        if self.pid():
            return self.connection()
        home = install(self.params.version)
        java, major = find_java()
        log.info("starting Neo4j %s with %s (Java %d)", self.params.version, java, major)
        port = self.params.port or _free_port()
        if not _port_free(port):
            raise Neo4jServerError(
                f"port 127.0.0.1:{port} is in use; set [neo4j] port to another one, or 0 for any"
            )
        conf_dir = self.dir / "conf"
        conf_dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        (conf_dir / "neo4j.conf").write_text(self._conf(port, home))
        (conf_dir / "apoc.conf").write_text(APOC_CONF)
        make_private(self.dir)  # also fixes a directory an older cxgraph left 0755/0644
        env = {**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(conf_dir)}
        if not (self.dir / "data" / "databases" / "system").exists():
            # The initial password only takes effect before the first start.
            proc = subprocess.run(
                [str(java), "-cp", f"{home}/lib/*", "org.neo4j.cli.AdminTool",
                 "dbms", "set-initial-password", self.password()],
                capture_output=True, text=True, env=env, umask=0o077,
            )
            if proc.returncode != 0:
                raise Neo4jServerError(f"could not set the Neo4j password:\n{proc.stderr[-2000:]}")
        cmd = [
            str(java), f"-Xms{self.params.heap_mb}m", f"-Xmx{self.params.heap_mb}m",
            "-XX:+UseG1GC", *JVM_OPENS, "-Dio.netty.tryReflectionSetAccessible=true",
            "-cp", f"{home}/plugins/*:{conf_dir}/*:{home}/lib/*",
            "org.neo4j.server.CommunityEntryPoint",
            f"--home-dir={home}", f"--config-dir={conf_dir}", "--console-mode",
        ]
        fd = os.open(self.console_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "ab") as out:
            proc_ = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=self.dir, start_new_session=True,  # outlives the CLI
                umask=0o077,  # the store, auth.ini and logs: owner only
            )
        uri = f"bolt://127.0.0.1:{port}"
        atomic_write_bytes(
            self.record_file,
            json.dumps({"pid": proc_.pid, "uri": uri, "port": port, "home": str(home),
                        "version": self.params.version, "started": time.time()}).encode(),
        )
        conn = Connection(uri, "neo4j", self.password(), managed=True)
        self._wait_ready(proc_, conn)
        return conn

    def _conf(self, port: int, home: Path) -> str:
        d = self.dir
        return "\n".join([
            f"server.bolt.listen_address=127.0.0.1:{port}",
            "server.default_listen_address=127.0.0.1",
            "server.http.enabled=false",
            "server.https.enabled=false",
            f"server.directories.data={d / 'data'}",
            f"server.directories.logs={d / 'logs'}",
            f"server.directories.import={d / 'import'}",
            f"server.directories.run={d / 'run'}",
            f"server.directories.plugins={home / 'plugins'}",
            f"server.memory.pagecache.size={self.params.pagecache_mb}m",
            "dbms.security.auth_enabled=true",
            "dbms.usage_report.enabled=false",
            # Analyst Cypher must not reach out: no file URLs in LOAD CSV (HTTP URLs are
            # refused by the read path's plan check), and only APOC that computes on
            # values or the graph is loaded at all (no apoc.load/import/export, no
            # apoc.cypher/periodic that would run unchecked Cypher, no apoc.systemdb).
            "dbms.security.allow_csv_import_from_file_urls=false",
            "dbms.security.procedures.allowlist=" + ",".join(APOC_ALLOWLIST),
            "dbms.security.procedures.unrestricted=apoc.*",
            "db.transaction.timeout=0",
            f"db.memory.transaction.max={self.params.transaction_memory_mb}m",
            "",
        ])

    def _wait_ready(self, proc: subprocess.Popen, conn: Connection) -> None:
        import neo4j.exceptions

        deadline = time.monotonic() + self.params.start_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.record_file.unlink(missing_ok=True)
                raise Neo4jServerError(
                    f"Neo4j exited with code {proc.returncode} while starting; "
                    f"last lines of {self.console_log}:\n{self.log_tail()}"
                )
            if "Started." in self.log_tail(5):
                try:
                    with conn.driver(check=False) as drv:
                        drv.verify_connectivity()
                    return
                except neo4j.exceptions.AuthError as e:
                    raise Neo4jServerError(
                        f"Neo4j at {conn.uri} refused the password in {self.password_file} "
                        "(was the data directory created with another password?)"
                    ) from e
                except neo4j.exceptions.ServiceUnavailable:
                    pass
            time.sleep(0.5)
        self.stop()
        raise Neo4jServerError(
            f"Neo4j did not answer within {self.params.start_timeout_s:.0f} s; "
            f"last lines of {self.console_log}:\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 60.0) -> bool:
        """SIGTERM and wait; SIGKILL only if it will not stop. Returns True if it was running."""
        pid = self.pid()
        if pid is None:
            self.record_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            log.warning("Neo4j (pid %d) did not stop in %.0f s; killing it", pid, timeout_s)
            os.kill(pid, signal.SIGKILL)
        self.record_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 30) -> str:
        if not self.console_log.exists():
            return "(no log)"
        with open(self.console_log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 20000))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])


def make_private(root: Path) -> None:
    """``root`` and everything in it readable by its owner only (dirs 0700, files 0600):
    the data directory holds the graph, ``auth.ini`` (the password hash) and logs with
    query text."""
    root.chmod(0o700)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                p.chmod(0o700)
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                with contextlib.suppress(FileNotFoundError):  # a file the server just removed
                    p.chmod(0o600)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --- what the rest of cxgraph calls ---------------------------------------------


def external_connection(params: Neo4jParams) -> Connection | None:
    """An existing Neo4j named by NEO4J_URI (or ``[neo4j] uri``), if any."""
    uri = os.environ.get("NEO4J_URI") or params.uri
    if not uri:
        return None
    password = os.environ.get("NEO4J_PASSWORD")
    if password is None:
        raise Neo4jServerError(f"NEO4J_URI/[neo4j] uri is {uri!r} but NEO4J_PASSWORD is not set")
    return Connection(uri, os.environ.get("NEO4J_USER") or params.user, password)


def managed_server(ws: Workspace) -> ManagedServer:
    return ManagedServer(ws.neo4j_dir, ws.config["neo4j"])


def connect(ws: Workspace, start: bool = True) -> Connection:
    """The Neo4j this workspace uses: an external one if configured, else the managed one."""
    ext = external_connection(ws.config["neo4j"])
    if ext:
        return ext
    server = managed_server(ws)
    return server.start() if start else server.connection()


def server_info(conn: Connection) -> dict[str, Any]:
    """Version, edition and APOC version as the server itself reports them."""
    import neo4j.exceptions

    with conn.driver() as drv:
        comp = drv.execute_query("CALL dbms.components() YIELD name, versions, edition "
                                 "RETURN name, versions[0] AS version, edition").records[0]
        try:
            apoc = drv.execute_query("RETURN apoc.version() AS v").records[0]["v"]
        except neo4j.exceptions.ClientError:
            apoc = None
    return {"name": comp["name"], "version": comp["version"], "edition": comp["edition"],
            "apoc": apoc, "uri": conn.uri}
