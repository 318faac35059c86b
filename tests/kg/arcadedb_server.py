"""Run ArcadeDB (from the ``arcadedb-embedded`` wheel, its own JRE) with the Bolt plugin on 127.0.0.1.

``python -m tests.kg.arcadedb_server --root DIR --bolt-port N --http-port M --password P --database NAME...``
creates the databases, prints ``READY`` and serves until its standard input closes (or it gets SIGTERM). It runs
in its own process so the JVM never lives inside pytest and ArcadeDB's ``./log`` lands in ``--root``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--bolt-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--https-port", type=int, required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--database", action="append", default=[])
    args = parser.parse_args()
    os.chdir(args.root)  # ArcadeDB writes ./log relative to the working directory
    import arcadedb_embedded

    server = arcadedb_embedded.create_server(
        os.path.join(args.root, "server"),
        root_password=args.password,
        config={
            "host": "127.0.0.1",
            "http_port": args.http_port,
            "server_httpsIncomingPort": args.https_port,
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "bolt_port": args.bolt_port,
        },
    )
    server.start()
    for name in args.database:
        server.create_database(name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print("READY", flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
