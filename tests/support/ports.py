"""A free loopback port, for a server that binds its own (another program, a command run as a page
documents it, cms-mock with several workers, the benchmark's servers): another process may take
the port before it binds. A server that can be handed its socket is (``servers.LiveServer``)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
