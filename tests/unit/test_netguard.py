"""The loopback-only guard itself."""

import socket

import pytest
from sitecustomize import NonLoopbackConnection


def test_guard_refuses_non_loopback_connect() -> None:
    """Connecting to a public address fails before any packet is sent."""
    with socket.socket() as sock, pytest.raises(NonLoopbackConnection):
        sock.connect(("203.0.113.7", 443))


def test_guard_refuses_resolving_public_names() -> None:
    """Resolving a public host name fails (no DNS query leaves the machine)."""
    with pytest.raises(NonLoopbackConnection):
        socket.getaddrinfo("example.com", 443)


def test_guard_allows_loopback() -> None:
    """Loopback servers and clients work as usual."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
