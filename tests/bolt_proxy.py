"""A TCP proxy in front of Neo4j's Bolt port that can be cut, as if the server died."""

from __future__ import annotations

import socket
import threading


class BoltProxy:
    """A TCP proxy to Neo4j that can be cut, as if the server were killed mid-load."""

    def __init__(self, target: str):
        host, port = target.removeprefix("bolt://").split(":")
        self.target = (host, int(port))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.sent = 0
        self.cut_after: int | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src, dst, count):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if count:
                    self.sent += len(data)
                    if self.cut_after is not None and self.sent > self.cut_after:
                        self.cut()
                        return
        except OSError:
            pass

    def cut(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
