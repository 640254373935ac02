"""gunicorn's hooks for the web processes: `gunicorn config.wsgi -c python:config.gunicorn …` (README,
"Deploying"). Loaded by gunicorn's master before it starts any worker; imports nothing of Django.

With `--reuse-port` every worker binds the address itself (`SO_REUSEPORT`), which changes two things
an operator relies on: a port held by another program no longer stops gunicorn — its workers fail to
bind and are started again, for ever — and a second gunicorn of the same user on the same port
joins the first silently. `on_starting` restores the plain failure: before any worker starts, the
master binds each address once without `SO_REUSEPORT`, and stops with a clear error if that fails.
"""

from __future__ import annotations

import errno
import socket


def on_starting(server) -> None:
    """Refuse to start when a bind address is in use (only with `--reuse-port`; an upgrade by USR2,
    whose old master holds the port by design, is let through)."""
    if not server.cfg.reuse_port or server.master_pid:
        return
    for address in server.cfg.address:
        if not isinstance(address, tuple):
            raise RuntimeError(f"--reuse-port binds TCP addresses only, not {address}: drop --reuse-port for it")
        host, port = address[0], address[1]
        if not port:
            raise RuntimeError(
                f"--reuse-port needs a fixed port: with {host}:0 each worker would get a port of its own"
            )
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is fine
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise RuntimeError(
                        f"{host}:{port} is already in use (another gunicorn or program listens there)"
                    ) from None
                raise RuntimeError(f"cannot bind {host}:{port}: {exc.strerror}") from None
