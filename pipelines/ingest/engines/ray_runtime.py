"""Joining a Ray cluster, or starting a local Ray instance kept on 127.0.0.1, for the Ray ingestion engine.

With an address (``KGRAG_INGEST__RAY__ADDRESS``, else ``RAY_ADDRESS``) the run connects to that cluster and leaves
it running. Without one, a local instance is started with a few CPUs, no dashboard, usage stats off, and every
server bound to 127.0.0.1 (Ray binds a non-loopback address by default), and it is shut down after the run. A
process that already called ``ray.init`` (a test session, a notebook) is used as it is and left running.
"""

from __future__ import annotations

import logging
import os
import socket
from types import ModuleType

from core.errors import ConfigurationError, IngestEngineError

LOOPBACK = "127.0.0.1"


class RayRuntime:
    """Starts or joins Ray on :meth:`start` and shuts down on :meth:`shutdown` only what it started itself."""

    def __init__(self, address: str | None = None, num_cpus: int = 2, object_store_mb: int = 256) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.object_store_mb = object_store_mb
        self.started_here = False

    def resolved_address(self) -> str | None:
        """The cluster to join: the configured address, else ``RAY_ADDRESS``, else None (start a local instance)."""
        return self.address or os.environ.get("RAY_ADDRESS") or None

    def start(self) -> ModuleType:
        """Make sure Ray is up (joined, started, or already initialised by this process) and return ``ray``."""
        address = self.resolved_address()
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # read by ray.init; no usage reports leave the machine
        if address is None:
            # Ray replaces a loopback node ip by the machine's outward address (and binds there) unless this is 0.
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        if address is not None:
            _check_reachable(address)
        import ray

        if ray.is_initialized():
            _quiet_ray_data()
            return ray
        try:
            if address is not None:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=self.num_cpus,
                    object_store_memory=self.object_store_mb * 1024 * 1024,
                    include_dashboard=False,
                    _node_ip_address=LOOPBACK,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                )
        except Exception as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise IngestEngineError(
                f"could not start or join {where}: {exc}",
                hint="check RAY_ADDRESS / KGRAG_INGEST__RAY__ADDRESS (e.g. ray://head:10001 or head:6379), unset both "
                "to run a local instance, or use --engine local",
            ) from exc
        self.started_here = True
        if address is None:
            node_ip = ray.util.get_node_ip_address()
            if node_ip != LOOPBACK:
                self.shutdown()
                raise ConfigurationError(
                    f"the local Ray instance came up on {node_ip}, not on {LOOPBACK}",
                    hint="Ray was imported before kgrag could keep it on loopback; run ingestion in a fresh process "
                    "or set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before Ray is imported",
                )
        _quiet_ray_data()
        return ray

    def shutdown(self) -> None:
        """Shut Ray down if :meth:`start` started or joined it; leave a caller's own Ray session alone."""
        if not self.started_here:
            return
        import ray

        ray.shutdown()
        self.started_here = False


def _check_reachable(address: str) -> None:
    """Fail at once, with the fix, when a ``host:port`` or ``ray://host:port`` address does not answer (``ray.init``
    would retry for minutes). ``auto`` and addresses without a port are left to Ray."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise IngestEngineError(
            f"the Ray cluster at {address} does not answer ({exc.strerror or exc})",
            hint="check RAY_ADDRESS / KGRAG_INGEST__RAY__ADDRESS (the head's GCS port, e.g. head:6379, or its Ray "
            "Client port, ray://head:10001), unset both to run a local instance, or use --engine local",
        ) from exc


def _quiet_ray_data() -> None:
    """No Ray Data progress bars or per-dataset log lines: the CLI shows its own rich bars and prints JSON."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # not "progress bars disabled" on every run
