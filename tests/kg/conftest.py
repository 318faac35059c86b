"""Session fixture: a real ArcadeDB server speaking Bolt (Neo4j-compatible) on 127.0.0.1, stopped after."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BoltServer:
    """A running ArcadeDB Bolt server: where it listens and how to log in."""

    uri: str
    user: str
    password: str
    databases: tuple[str, ...]
    process: subprocess.Popen[str]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the server stops when its stdin closes
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_arcadedb(root: Path, databases: tuple[str, ...]) -> BoltServer:
    """Start ``tests.kg.arcadedb_server`` in its own process and wait until it prints READY."""
    root.mkdir(parents=True, exist_ok=True)
    bolt, http, https = free_port(), free_port(), free_port()
    password = "kgrag-test-password"
    log = root / "server.log"
    command = [sys.executable, "-m", "tests.kg.arcadedb_server", "--root", str(root), "--password", password]
    command += ["--bolt-port", str(bolt), "--http-port", str(http), "--https-port", str(https)]
    for name in databases:
        command += ["--database", name]
    with log.open("w") as handle:
        process = subprocess.Popen(
            command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=handle, text=True
        )
    server = BoltServer(f"bolt://127.0.0.1:{bolt}", "root", password, databases, process, log)
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until READY or the process dies
    if line.strip() != "READY":
        server.stop()
        raise RuntimeError(f"ArcadeDB did not start: {line!r}; see {log}:\n{log.read_text()[-3000:]}")
    return server
