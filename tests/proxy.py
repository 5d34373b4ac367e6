"""A TCP proxy that can stop forwarding: a network partition, as a cut-off client sees it.

While paused it forwards nothing in either direction and opens no new upstream
connection, yet both sides' kernels still accept and acknowledge what is sent
(the proxy's sockets stay open): no reset, no error, only silence. That is a
partition that TCP keepalives and `tcp_user_timeout` cannot see, the case the
lease must bound by itself. On `resume()` everything held back is delivered,
in order, and a side that closed meanwhile is closed on the other side too.
"""

from __future__ import annotations

import socket
import threading

CHUNK = 65536


class PausableProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def pause(self) -> None:
        """Stop forwarding: from now on nothing crosses, in either direction."""
        self._forwarding.clear()

    def resume(self) -> None:
        """Heal: deliver what was held back and forward again."""
        self._forwarding.set()

    def close(self) -> None:
        self._closed = True
        self._forwarding.set()
        with self._lock:
            for s in [self._listener, *self._sockets]:
                try:  # shutdown first: it wakes a pump blocked in recv(), close alone would not
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def _keep(self, s: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(s)
        return s

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._keep(client)
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self._forwarding.wait()  # a connection made during the partition hangs
        try:
            server = self._keep(socket.create_connection(self.upstream))
        except OSError:
            client.close()
            return
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                data = source.recv(CHUNK)
            except OSError:
                data = b""
            self._forwarding.wait()  # received while paused: held until the heal
            if self._closed:
                return
            if not data:
                try:
                    target.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            try:
                target.sendall(data)
            except OSError:
                return
