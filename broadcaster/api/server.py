"""uvicorn on a socket we bind ourselves, so the port is known (and moved if taken) before start."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)


def bind_socket(host: str, preferred: int, fallback: int = 0) -> socket.socket:
    """Bind the preferred port; if it is taken (8080 often is), the port of the previous run, whose
    audio URLs devices may still hold in commands; else any free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for port in dict.fromkeys(p for p in (preferred, fallback) if p):
        try:
            sock.bind((host, port))
            break
        except OSError:
            log.warning("port %s is taken", port)
    else:
        sock.bind((host, 0))
    sock.listen(256)
    sock.set_inheritable(True)
    return sock


class HttpServer:
    """uvicorn on its own thread, on a socket we bound ourselves so the port is known before start."""

    def __init__(self, app: FastAPI, host: str, port: int, fallback_port: int = 0) -> None:
        self.sock = bind_socket(host, port, fallback_port)
        self.host, self.port = self.sock.getsockname()[:2]
        # log_config=None: uvicorn's lines go through the daemon's handler (runtime/logs.py), so a traceback
        # of an app error is one JSON object too with `log_format = "json"`, not uvicorn's own text.
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", log_config=None)
        )
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.05)):
            if self.server.started:
                return
            deadline.wait(0.05)
        raise RuntimeError("HTTP server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=5)
        self.sock.close()
