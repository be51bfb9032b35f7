"""A throwaway two-shard ClickHouse cluster: Debian's clickhouse-server (18.16), two processes.

Each server gets its own directory (data, tmp, logs, config), its own native TCP and HTTP ports on
the loopback, and the same `remote_servers` section naming both as the cluster `openautotune`, so a
`Distributed` table on either spreads rows over the two and reads both. Started once per test session
by a fixture (a server takes about a second to listen); stopped and deleted at the end. No ZooKeeper:
each shard has one replica, and the tests never need replication.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CLUSTER = "openautotune"
SERVER_PATHS = ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server")


class Unavailable(Exception):
    """clickhouse-server is not installed or did not start; the message says why."""


def server_binary() -> str:
    found = shutil.which("clickhouse-server")
    if found:
        return found
    for path in SERVER_PATHS:
        if Path(path).exists():
            return path
    raise Unavailable("no clickhouse-server (Debian: apt-get install clickhouse-server)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(directory: Path, tcp_port: int, http_port: int, shard_ports: list[int]) -> str:
    shards = "".join(
        f"<shard><replica><host>127.0.0.1</host><port>{port}</port></replica></shard>" for port in shard_ports
    )
    return f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{directory}/server.log</log><errorlog>{directory}/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{tcp_port}</tcp_port>
  <http_port>{http_port}</http_port>
  <path>{directory}/data/</path>
  <tmp_path>{directory}/tmp/</tmp_path>
  <user_files_path>{directory}/user_files/</user_files_path>
  <format_schema_path>{directory}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <remote_servers><{CLUSTER}>{shards}</{CLUSTER}></remote_servers>
</yandex>
"""


_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"""


@dataclass
class ThrowawayCluster:
    """Two clickhouse-server processes forming the two-shard cluster `openautotune`."""

    directory: Path
    ports: list[int]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def url(self, shard: int = 0, database: str = "default") -> str:
        return f"clickhouse://default:@127.0.0.1:{self.ports[shard]}/{database}"

    @classmethod
    def start(cls, shards: int = 2, timeout: float = 30.0) -> ThrowawayCluster:
        binary = server_binary()
        directory = Path(tempfile.mkdtemp(prefix="openautotune-ch-"))
        ports = [_free_port() for _ in range(shards)]
        cluster = cls(directory=directory, ports=ports)
        try:
            for number, port in enumerate(ports):
                home = directory / f"shard{number}"
                home.mkdir()
                (home / "config.xml").write_text(_config(home, port, _free_port(), ports))
                (home / "users.xml").write_text(_USERS)
                cluster.processes.append(
                    subprocess.Popen(
                        [binary, f"--config-file={home / 'config.xml'}"],
                        cwd=home,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            cluster._wait(timeout)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for number, port in enumerate(self.ports):
            while True:
                if self.processes[number].poll() is not None:
                    log = self.directory / f"shard{number}" / "error.log"
                    tail = log.read_text()[-2000:] if log.exists() else "(no log)"
                    raise Unavailable(f"clickhouse-server shard {number} exited: {tail}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
                if time.monotonic() > deadline:
                    raise Unavailable(f"clickhouse-server shard {number} did not listen within {timeout} s")
                time.sleep(0.1)

    def stop_shard(self, number: int) -> None:
        process = self.processes[number]
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        for number in range(len(self.processes)):
            self.stop_shard(number)
        shutil.rmtree(self.directory, ignore_errors=True)
