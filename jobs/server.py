"""`drg serve`: a warm driver. One long-running process keeps a SparkSession; `drg` commands run in it.

Why: a `drg` command in a fresh process pays for a new JVM every time: about 7 s to start Spark, 5 s
for the first Delta read, and then every query runs slower until HotSpot has compiled Spark's code
again. On a 300k-case lake a +1% night took 94 s as its own command against 47 s in a warm process
(README, "Incremental nights"), and `drg stats` is seconds of JVM start for a sub-second query. Spark's
own warm drivers (Spark Connect, a Thrift server) need a py4j-free client, and the pipeline uses the JVM
directly (the pseudonymisation key, Delta's Python API), so the server runs the same `drg` entry point
in its own interpreter, one command at a time, as a build daemon does.

The protocol, over a Unix socket only its user can open (0600; the default folder is made 0700): the
client sends one JSON line {argv, cwd, env, tty}; the server answers with JSON lines {"out": text},
{"err": text} and finally {"exit": code}. Per command the server takes the client's working directory
(Python's and the local Hadoop file system's, so relative lake paths mean what they mean for the
client) and its DRG_* variables (the pseudonymisation key or key file among them), and puts its own
back afterwards, with the SQL options a `--conf` set, the cached tables and the key's JVM property.
What a command cannot change is what the JVM was started with: master, memory, jars, credentials.
A client that goes away (a scheduler killing its task) cancels the command: its Spark jobs are
cancelled and the command is interrupted as by Ctrl-C, so a night releases the lake lock.
"""

from __future__ import annotations

import _thread
import gc
import json
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

from jobs.errors import PipelineError
from jobs.pseudonym import KEY_PROPERTY

SERVER_ENV = "DRG_SERVER"
ENV_PREFIX = "DRG_"  # the project's variables: a command's come from its client (client_env)


def client_env(environ) -> dict[str, str]:
    """The variables a command takes from its client: DRG_*, never DRG_SERVER (the server's own address)."""
    return {k: v for k, v in environ.items() if k.startswith(ENV_PREFIX) and k != SERVER_ENV}


def default_socket() -> Path:
    """A per-user path: $XDG_RUNTIME_DIR when the session has one, else the user's cache folder."""
    base = os.environ.get("XDG_RUNTIME_DIR") or Path.home() / ".cache"
    return Path(base) / "drg-recal" / "server.sock"


# ------------------------------------------------------------------------------------------------ client
def forward(path: str, argv: list[str]) -> int | None:
    """Run `drg argv` in the server at `path`, streaming its output; its exit code, or None when no
    server answers there (the caller then runs the command itself)."""
    out, err = sys.stdout, sys.stderr  # this process's own, whatever a server in it does with sys.stdout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        print(f"drg: no server at {path} ({exc.strerror or exc}); running in this process", file=err)
        return None
    request = {
        "argv": argv,
        "cwd": os.getcwd(),
        "env": client_env(os.environ),
        "tty": out.isatty(),
    }
    try:
        sock.sendall((json.dumps(request) + "\n").encode("utf-8"))
        with sock.makefile("r", encoding="utf-8") as replies:
            for line in replies:
                reply = json.loads(line)
                if "exit" in reply:
                    return int(reply["exit"])
                stream = out if "out" in reply else err
                stream.write(reply.get("out", reply.get("err", "")))
                stream.flush()
    except KeyboardInterrupt:  # closing the socket tells the server to cancel the command
        print("drg: interrupted", file=err)
        return 130
    finally:
        sock.close()
    print(f"drg: the server at {path} closed the connection before the command ended", file=err)
    return 1


# ------------------------------------------------------------------------------------------------ server
class _Stream:
    """sys.stdout / sys.stderr of a command: each write is a JSON line to the client. Thread-safe (a
    night's steps print from worker threads); a client that has gone leaves writes silently dropped."""

    def __init__(self, conn: socket.socket, key: str, tty: bool, lock: threading.Lock):
        self._conn, self._key, self._tty, self._lock = conn, key, tty, lock
        self.encoding = "utf-8"

    def write(self, text: str) -> int:
        if text:
            with self._lock:
                try:
                    self._conn.sendall((json.dumps({self._key: text}) + "\n").encode("utf-8"))
                except OSError:
                    pass
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self._tty

    def writable(self) -> bool:
        return True


def _watch(conn: socket.socket, cancel: Callable[[], None]) -> None:
    """Wait for the client to hang up, then cancel the command (a no-op once it has ended)."""
    try:
        while conn.recv(1024):
            pass
    except OSError:
        pass
    cancel()


class Server:
    """Accepts one command at a time on a Unix socket and runs it with `run_command(argv) -> exit code`
    (jobs.cli.main) in this process, whose SparkSession every command shares."""

    def __init__(self, path: Path, run_command: Callable[[list[str]], int], spark, idle_minutes: float = 0):
        self.path, self.run_command, self.spark = Path(path), run_command, spark
        self.idle = idle_minutes * 60 or None
        self.served = 0
        self._ending = threading.Lock()  # a hang-up and the command's end must not interleave
        self._hung_up = False  # the interrupt in flight is a client's hang-up, not a stop
        self._saved = None  # what the running command changed in this process

    def bind(self) -> socket.socket:
        if not self.path.parent.exists():  # a folder we make is the user's only; a given one is left as it is
            self.path.parent.mkdir(parents=True, mode=0o700)
        if self.path.exists():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()  # a server that died left its socket
            else:
                raise PipelineError(f"a server is already listening on {self.path}")
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old)
        listener.listen(8)
        return listener

    def serve(self, listener: socket.socket, stop: threading.Event | None = None) -> None:
        """Serve until `stop` is set, the idle time passes or the process is told to stop."""
        listener.settimeout(1.0)
        idle = 0.0
        try:
            while not (stop and stop.is_set()):
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    idle += 1.0
                    if self.idle and idle >= self.idle:
                        print(f"drg serve: idle for {self.idle / 60:g} min, stopping", file=sys.stderr)
                        return
                    continue
                idle = 0.0
                with conn:
                    try:
                        self.handle(conn)
                    except KeyboardInterrupt:  # a hang-up's interrupt landed after the command
                        if not self._hung_up:
                            raise
                    finally:
                        try:  # the client sees the end even if the command broke the server
                            conn.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        self._restore()
                        self._hung_up = False
        finally:
            listener.close()
            self.path.unlink(missing_ok=True)

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        try:
            with conn.makefile("r", encoding="utf-8") as lines:
                request = json.loads(lines.readline())
            argv, cwd, env, tty = request["argv"], request["cwd"], request["env"], bool(request.get("tty"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"drg serve: bad request ignored: {type(exc).__name__}: {exc}", file=sys.stderr)
            return
        lock, done = threading.Lock(), threading.Event()
        in_main = threading.current_thread() is threading.main_thread()
        threading.Thread(target=_watch, args=(conn, lambda: self._cancel(done, in_main)), daemon=True).start()
        try:
            code = self._run(argv, cwd, env, _Stream(conn, "out", tty, lock), _Stream(conn, "err", tty, lock))
        finally:
            with self._ending:
                done.set()
        self.served += 1
        try:
            conn.sendall((json.dumps({"exit": code}) + "\n").encode("utf-8"))
        except OSError:
            pass

    def _cancel(self, done: threading.Event, in_main: bool) -> None:
        with self._ending:
            if done.is_set():
                return
            self.spark.sparkContext.cancelAllJobs()
            self._hung_up = True
            if in_main:  # a server started from a test's thread must not interrupt the test
                _thread.interrupt_main()

    def _run(self, argv: list[str], cwd: str, env: dict[str, str], out: _Stream, err: _Stream) -> int:
        """One command with the client's directory, DRG_* variables and streams; everything put back."""
        self._saved = ({k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}, os.getcwd(),
                       self._local_fs().getWorkingDirectory(), (sys.stdout, sys.stderr), self._sql_conf())
        try:
            for key in self._saved[0]:
                os.environ.pop(key)
            os.environ.update(client_env(env))
            os.chdir(cwd)
            self._hadoop_cwd(cwd)
            sys.stdout, sys.stderr = out, err
            try:
                return int(self.run_command(argv) or 0)
            except SystemExit as exc:  # argparse: --help, usage errors
                return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
            except Exception:  # noqa: BLE001 - the server outlives a command's bug; the client sees it
                traceback.print_exc()
                return 1
        finally:
            self._restore()

    def _restore(self) -> None:
        """Put back what `_run` changed; idempotent, so an interrupt that lands in it can run it again."""
        if self._saved is None:
            return
        env, cwd, hadoop_cwd, streams, conf = self._saved
        sys.stdout, sys.stderr = streams
        for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
            os.environ.pop(key)
        os.environ.update(env)
        os.chdir(cwd)
        self._local_fs().setWorkingDirectory(hadoop_cwd)
        self._restore_conf(conf)
        self._forget()
        self._saved = None

    def _sql_conf(self) -> dict[str, str]:
        """The session's runtime SQL options: the only ones a command can set on a running session."""
        return {k: v for k, v in self.spark.conf.getAll.items()
                if k.startswith("spark.sql.") and self.spark.conf.isModifiable(k)}

    def _restore_conf(self, saved: dict[str, str]) -> None:
        """Undo what a command's --conf set: its SQL options belong to that command only."""
        for key, value in self._sql_conf().items():
            if key not in saved:
                self.spark.conf.unset(key)
            elif saved[key] != value:
                self.spark.conf.set(key, saved[key])

    def _local_fs(self):
        jvm = self.spark.sparkContext._jvm
        return jvm.org.apache.hadoop.fs.FileSystem.getLocal(self.spark.sparkContext._jsc.hadoopConfiguration())

    def _hadoop_cwd(self, cwd: str) -> None:
        """Relative paths given to Spark resolve against the local file system's working directory, fixed
        at the JVM's start; set it to the client's."""
        self._local_fs().setWorkingDirectory(self.spark.sparkContext._jvm.org.apache.hadoop.fs.Path(
            Path(cwd).as_uri()))

    def _forget(self) -> None:
        """What a finished command leaves in the JVM: cached tables, checkpoints (freed once unreferenced),
        the pseudonymisation key's property."""
        self.spark.catalog.clearCache()
        self.spark.sparkContext._jvm.java.lang.System.clearProperty(KEY_PROPERTY)
        gc.collect()


def serve(args, run_command: Callable[[list[str]], int]) -> int:
    """`drg serve`: start Spark, listen, run commands until stopped (Ctrl-C, SIGTERM, --idle-minutes)."""
    from jobs.spark import get_spark, parse_conf

    path = Path(args.socket or os.environ.get(SERVER_ENV) or default_socket())
    spark = get_spark("drg-server", parse_conf(args.conf))
    server = Server(path, run_command, spark, args.idle_minutes)
    listener = server.bind()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"drg serve: listening on {path} (pid {os.getpid()}, Spark {spark.version}, "
          f"master {spark.sparkContext.master}); run commands with {SERVER_ENV}={path} drg ...", flush=True)
    try:
        server.serve(listener, stop)
    except KeyboardInterrupt:
        pass
    print(f"drg serve: stopped after {server.served} command(s)", flush=True)
    return 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="keep a warm Spark driver; DRG_SERVER=SOCKET drg ... runs commands in it")
    p.add_argument("--socket", help=f"Unix socket to listen on (default: ${SERVER_ENV} or {default_socket()})")
    p.add_argument("--idle-minutes", type=float, default=0, help="stop after this long without a command (0: never)")
