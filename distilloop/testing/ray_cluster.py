"""A real Ray cluster of two nodes on loopback addresses, started with ``ray start`` (for tests and benchmarks).

Ray rewrites ``127.0.0.1`` to the machine's network address whenever it runs as a multi-node cluster (it
assumes other machines must reach it), so the head runs on ``127.0.0.2`` and the second node on ``127.0.0.3``:
both in the loopback range, so nothing leaves the machine. Each node gets its CPUs and a small object store;
the cluster's processes are found by its own temporary folder and stopped by their ids, never by name (other
Ray clusters on the machine are left alone).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalRayCluster:
    """``ray start --head`` plus one ``ray start --address``; :attr:`address` is what ``[compute] address`` takes."""

    def __init__(self, *, cpus_per_node: int = 1, object_store_mb: int = 200, pythonpath: str | None = None) -> None:
        self.cpus_per_node = cpus_per_node
        self.object_store_mb = object_store_mb
        self.temp = tempfile.mkdtemp(prefix="dlray")  # short: Ray's unix sockets live under it (108-byte limit)
        self.port = _free_port(HEAD_IP)
        self.address = f"{HEAD_IP}:{self.port}"
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": pythonpath or os.environ.get(
            "PYTHONPATH", "")}
        self.env.pop("RAY_ADDRESS", None)

    def _ray(self, *args: str, timeout: float = 180) -> None:
        ray = str(Path(sys.executable).with_name("ray"))
        out = subprocess.run([ray, "start", *args, f"--num-cpus={self.cpus_per_node}",
                              f"--object-store-memory={self.object_store_mb * 1024 * 1024}", "--disable-usage-stats"],
                             env=self.env, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed: {(out.stderr or out.stdout)[-800:]}")

    def start(self) -> LocalRayCluster:
        try:
            self._ray("--head", f"--node-ip-address={HEAD_IP}", f"--port={self.port}", "--include-dashboard=false",
                      f"--temp-dir={self.temp}")
            self._ray(f"--address={self.address}", f"--node-ip-address={NODE_IP}")
        except BaseException:
            self.stop()
            raise
        return self

    def pids(self) -> list[int]:
        """The cluster's processes: those whose command line names its temporary folder, and their children."""
        own: set[int] = set()
        me = {os.getpid(), os.getppid()}  # a command line that merely names the folder (this one) is not the cluster
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and int(d.name) not in me:
                try:
                    if self.temp.encode() in (d / "cmdline").read_bytes():
                        own.add(int(d.name))
                except OSError:
                    continue
        grown = True
        while grown:  # workers and agents started by a raylet carry no folder in their command line
            grown = False
            for d in Path("/proc").iterdir():
                if d.name.isdigit() and int(d.name) not in own:
                    try:
                        ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    except (OSError, ValueError, IndexError):
                        continue
                    if ppid in own:
                        own.add(int(d.name))
                        grown = True
        return sorted(own)

    def stop(self, timeout: float = 8) -> None:
        """Stop every process of this cluster by its id (SIGTERM, then SIGKILL what is left) and remove its
        temporary folder."""
        pids = self.pids()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
                time.sleep(0.2)
            pids = [p for p in pids if Path(f"/proc/{p}").exists()]
            if not pids:
                break
        shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
