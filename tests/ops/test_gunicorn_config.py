"""`config.gunicorn`: the README's gunicorn, with `--reuse-port`, refuses an address already in use at
once instead of restarting workers that cannot bind (a real gunicorn, started as the README starts it)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.support.deploy import ROOT
from tests.support.http_servers import free_port

pytestmark = pytest.mark.deploy


def _gunicorn(*bind: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "python:config.gunicorn", "--workers", "2",
               "--threads", "4", "--reuse-port", "--no-control-socket"]  # fmt: skip
    for address in bind:
        command += ["--bind", address]
    # The master stops before it loads the application, so no setting of the app is needed.
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_a_port_another_program_listens_on_stops_gunicorn_at_once():
    # given a program listening on the port (without SO_REUSEPORT)
    port = free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        # when gunicorn is started on it as the README starts it
        started = _gunicorn(f"127.0.0.1:{port}")
    # then it stops before any worker starts, saying why
    assert started.returncode == 1
    assert f"Error: 127.0.0.1:{port} is already in use" in started.stderr
    assert "Booting worker" not in started.stderr


def test_a_second_gunicorn_does_not_join_the_first_ones_port():
    # given a listener bound as a gunicorn worker binds with --reuse-port
    port = free_port()
    with socket.socket() as first:
        first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        first.bind(("127.0.0.1", port))
        first.listen()
        # when a second gunicorn is started on the same port, by the same user
        started = _gunicorn(f"127.0.0.1:{port}")
    # then it refuses rather than silently sharing the port
    assert started.returncode == 1
    assert "is already in use" in started.stderr


def test_a_unix_socket_with_reuse_port_is_refused_with_a_remedy(tmp_path):
    started = _gunicorn(f"unix:{tmp_path / 'web.sock'}")
    assert started.returncode == 1
    assert "--reuse-port binds TCP addresses only" in started.stderr
    assert not (tmp_path / "web.sock").exists()


def test_port_zero_with_reuse_port_is_refused():
    # each worker binds by itself: port 0 would give every worker a different port
    started = _gunicorn("127.0.0.1:0")
    assert started.returncode == 1
    assert "--reuse-port needs a fixed port" in started.stderr
