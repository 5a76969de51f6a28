"""A loopback TCP proxy a test puts between a client and a server to cut the line and mend it.

``cut()`` drops every connection through it and closes every new one as soon as it is
accepted (the client sees its connections fail, like a venue gone from the network);
``restore()`` lets connections through again. Threads, so it serves a subprocess while the
test's own code blocks.
"""

import contextlib
import socket
import threading
from collections.abc import Iterator
from types import TracebackType

_CHUNK = 65_536
_POLL_S = 0.1  # how often the acceptor looks whether it should stop


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:upstream_port`` until closed."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL_S)
        self._stopping = threading.Event()
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self.accepted = 0
        self.refused = 0
        self._acceptor = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)

    def __enter__(self) -> "TcpProxy":
        self._acceptor.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        self.cut()

    def cut(self) -> None:
        """Drop every connection and refuse new ones until ``restore()``."""
        with self._lock:
            self._cut = True
            sockets, self._open = self._open, set()
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        """Let new connections through again."""
        with self._lock:
            self._cut = False

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            with self._lock:
                refuse = self._cut
                self.refused += refuse
                self.accepted += not refuse
            if refuse:
                _close(client)
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._upstream, timeout=5)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        with self._lock:
            if self._cut:
                _close(client)
                _close(upstream)
                return
            self._open |= {client, upstream}
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until either ends; then end both."""
    with contextlib.suppress(OSError):
        while data := source.recv(_CHUNK):
            sink.sendall(data)
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@contextlib.contextmanager
def tcp_proxy(upstream_port: int) -> Iterator[TcpProxy]:
    """Yield a running proxy to ``upstream_port`` on loopback."""
    with TcpProxy(upstream_port) as proxy:
        yield proxy
