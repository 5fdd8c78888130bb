"""`drg serve`: commands run in a warm driver with the client's directory, DRG_* variables and streams.

The server runs in a thread of the test process on the test run's SparkSession (one session for the
whole run); the clients are the real `drg` entry point and a raw client speaking the socket protocol.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from functools import partial

import pytest

from jobs import lake as lk
from jobs.cli import main
from jobs.errors import PipelineError
from jobs.server import Server, forward


@pytest.fixture()
def served(spark, tmp_path):
    """Start a server on a socket in tmp_path; yields (server, socket path) and stops it afterwards."""
    started = []

    def start(run_command):
        server = Server(tmp_path / "drg.sock", run_command, spark)
        stop = threading.Event()
        thread = threading.Thread(target=server.serve, args=(server.bind(), stop), daemon=True)
        thread.start()
        started.append((stop, thread))
        return server, str(server.path)

    yield start
    for stop, thread in started:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


def _raw_request(path: str, request: dict) -> list[dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall((json.dumps(request) + "\n").encode("utf-8"))
        with sock.makefile("r", encoding="utf-8") as replies:
            return [json.loads(line) for line in replies]


def test_a_command_gets_the_clients_directory_variables_and_streams_and_the_server_gets_its_own_back(
        spark, tmp_path, monkeypatch, served):
    seen = {}

    def command(argv):
        seen.update(argv=argv, cwd=os.getcwd(), key=os.environ.get("DRG_PSEUDONYM_KEY"),
                    servers=os.environ.get("DRG_ONLY_THE_SERVERS"), server=os.environ.get("DRG_SERVER"))
        print("result line")
        print("warning line", file=sys.stderr)
        spark.conf.set("spark.sql.shuffle.partitions", "3")  # what a --conf does
        spark.conf.set("spark.sql.files.maxRecordsPerFile", "7")
        return 3

    client_dir = tmp_path / "client"
    client_dir.mkdir()
    monkeypatch.setenv("DRG_PSEUDONYM_KEY", "the-servers-key")
    monkeypatch.setenv("DRG_ONLY_THE_SERVERS", "x")
    partitions = spark.conf.get("spark.sql.shuffle.partitions")
    here = os.getcwd()
    server, path = served(command)
    replies = _raw_request(path, {
        "argv": ["stats", "--lake", "lake"], "cwd": str(client_dir), "tty": False,
        "env": {"DRG_PSEUDONYM_KEY": "the-clients-key", "DRG_SERVER": path, "HOME": "/nowhere"},
    })
    assert seen == {"argv": ["stats", "--lake", "lake"], "cwd": str(client_dir), "key": "the-clients-key",
                    "servers": None, "server": None}
    assert replies == [{"out": "result line"}, {"out": "\n"}, {"err": "warning line"}, {"err": "\n"}, {"exit": 3}]
    # everything the command changed is the server's again
    assert os.getcwd() == here and os.environ["DRG_PSEUDONYM_KEY"] == "the-servers-key"
    assert os.environ["DRG_ONLY_THE_SERVERS"] == "x" and sys.stdout is not None and server.served == 1
    assert spark.conf.get("spark.sql.shuffle.partitions") == partitions
    assert spark.conf.get("spark.sql.files.maxRecordsPerFile") != "7"

    def broken(argv):
        raise ValueError("a bug in a command")

    server.run_command = broken  # the server outlives a command's bug and tells the client
    replies = _raw_request(path, {"argv": [], "cwd": here, "env": {}, "tty": False})
    assert replies[-1] == {"exit": 1} and "ValueError: a bug in a command" in "".join(r.get("err", "") for r in replies)


def test_drg_commands_run_in_the_server_and_relative_lake_paths_are_the_clients(
        spark, two_nights, monkeypatch, served, capsys):
    out, _ = two_nights
    case_id = lk.read(spark, str(out / "lake"), "gold", "grouped_cases").select("case_id").first()[0]
    calls = []

    def run_command(argv):
        calls.append(argv)
        return main(argv, in_server=True)

    server, path = served(run_command)
    monkeypatch.chdir(out)  # the test process's Spark resolves relative paths against the JVM's start folder
    argv = ["--server", path, "--conf", "spark.sql.shuffle.partitions=5", "group", "--lake", "lake",
            "--explain", case_id]
    start_dir = server._local_fs().getWorkingDirectory().toString()
    assert main(argv) == 0
    assert calls == [argv] and server.served == 1
    assert server._local_fs().getWorkingDirectory().toString() == start_dir  # the JVM's own again
    text = capsys.readouterr().out
    assert case_id in text and "DRG " in text
    assert spark.conf.get("spark.sql.shuffle.partitions") != "5"

    # a user error is the usual one line and exit code 2, from the server
    assert main(["--server", path, "group", "--lake", "no-such-lake", "--explain", case_id]) == 2
    assert "drg group: error:" in capsys.readouterr().err and len(calls) == 2
    # a server does not start another one inside itself
    replies = _raw_request(path, {"argv": ["serve"], "cwd": str(out), "env": {}, "tty": False})
    assert replies[-1] == {"exit": 2} and "already running in a server" in replies[0]["err"]


def test_without_a_server_the_command_runs_here_and_a_socket_is_served_once(spark, tmp_path, capsys, served):
    assert forward(str(tmp_path / "none.sock"), ["schema"]) is None
    assert "no server at" in capsys.readouterr().err
    assert main(["--server", str(tmp_path / "none.sock"), "schema"]) == 0  # ran here instead
    assert "case_id" in capsys.readouterr().out
    stale = tmp_path / "stale.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(stale))
    listener.close()  # a dead server's socket file: replaced
    Server(stale, partial(main, in_server=True), spark).bind().close()
    _, path = served(partial(main, in_server=True))
    with pytest.raises(PipelineError, match="already listening"):
        Server(tmp_path / "drg.sock", partial(main, in_server=True), spark).bind()
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
