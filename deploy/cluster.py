"""A whole multi-node feedsvc on one machine, for trying the topology and for tests/test_topology.py:
a real PostgreSQL (initdb + pg_ctl in a temp dir, as `nobody` when run as root), one
`feedsvc serve --role scanner`, two `--role web` on their own ports and a real nginx
load-balancing the two web nodes, all on free 127.0.0.1 ports.

    python deploy/cluster.py [--notes DIR] [--lease-seconds 30] [--workers 1]

prints the URLs and runs until Ctrl+C (then stops everything and removes the temp dir).
Needs Debian's postgresql and nginx (`apt-get install postgresql nginx`)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PG_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bindir() -> Path:
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             check=True).stdout.strip()
        if (Path(out) / "initdb").exists():
            return Path(out)
    except (OSError, subprocess.CalledProcessError):
        pass
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True) + PG_BIN_DIRS:
        if (candidate / "initdb").exists():
            return candidate
    raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")


def as_unprivileged(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to nobody."""
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + cmd


def wait_http(url: str, timeout: float, check: object = None) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                data: dict[str, object] = json.loads(response.read())
                if check is None or callable(check) and check(data):
                    return data
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready in {timeout:.0f} s: {last}")


@dataclass
class Node:
    name: str
    role: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict[str, object]:
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=3) as response:
            data: dict[str, object] = json.loads(response.read())
            return data

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


@dataclass
class Cluster:
    """Start with start(), add nodes with add_node(), stop() tears everything down."""

    notes: Path
    lease_seconds: float = 30.0
    poll_seconds: int = 60
    workers: int = 1
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="feedsvc-cluster-")))
    nodes: list[Node] = field(default_factory=list)
    pg_port: int = 0
    nginx_port: int = 0
    _nginx: subprocess.Popen[bytes] | None = None
    _pg_data: Path | None = None

    @property
    def store_url(self) -> str:
        return f"postgresql+psycopg://feedsvc@127.0.0.1:{self.pg_port}/postgres"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    def start(self, *, webs: int = 2) -> Cluster:
        self.start_postgres()
        self.write_config()
        self.add_node("scanner", "scanner")
        for i in range(webs):
            self.add_node(f"web{i + 1}", "web")
        self.start_nginx([n for n in self.nodes if n.role == "web"])
        return self

    def start_postgres(self) -> None:
        bindir = pg_bindir()
        self.root.chmod(0o755)  # the unprivileged postgres must reach its data dir
        data = self.root / "pg"
        data.mkdir()
        sockets = self.root / "pg-sockets"
        sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(data, "nobody", "nogroup")
            shutil.chown(sockets, "nobody", "nogroup")
        self.pg_port = free_port()
        subprocess.run(as_unprivileged([str(bindir / "initdb"), "-D", str(data), "-U", "feedsvc",
                                        "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                       check=True, capture_output=True)
        log = self.root / "postgres.log"
        log.touch()
        if os.geteuid() == 0:
            shutil.chown(log, "nobody", "nogroup")
        subprocess.run(as_unprivileged([
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
            f"-p {self.pg_port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start"]), check=True, capture_output=True)
        self._pg_data = data

    def write_config(self) -> Path:
        config = self.root / "feedsvc.toml"
        config.write_text(
            f'[site]\nbase_url = "http://127.0.0.1:{self.nginx_port or 8080}/"\n\n'
            f'[[sources]]\nname = "notes"\npath = "{self.notes}"\n\n'
            f'[store]\nurl = "{self.store_url}"\n\n'
            f'[scheduler]\npoll_seconds = {self.poll_seconds}\nlease_seconds = {self.lease_seconds}\n\n'
            f'[webhook]\nallow_unauthenticated = true\nmin_interval_seconds = 0\n',
            encoding="utf-8")
        return config

    def add_node(self, name: str, role: str) -> Node:
        port = free_port()
        log = self.root / f"{name}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "feedsvc", "serve", "--config", str(self.root / "feedsvc.toml"),
                 "--role", role, "--port", str(port), "--workers", str(self.workers)],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)
        node = Node(name, role, port, process, log)
        self.nodes.append(node)
        wait_http(f"{node.url}/healthz", 60)
        return node

    def start_nginx(self, webs: list[Node]) -> None:
        self.nginx_port = free_port()
        prefix = self.root / "nginx"
        (prefix / "tmp").mkdir(parents=True)
        (prefix / "tmp").chmod(0o777)
        upstream = "\n".join(f"        server 127.0.0.1:{n.port} max_fails=0;" for n in webs)
        conf = prefix / "nginx.conf"
        conf.write_text(f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    upstream feedsvc_web {{
{upstream}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{self.nginx_port};
        location / {{
            proxy_pass http://feedsvc_web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
}}
""", encoding="utf-8")
        self._nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(prefix)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)
        wait_http(f"{self.url}/healthz", 20)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill(signal.SIGTERM)
        if self._nginx is not None and self._nginx.poll() is None:
            self._nginx.terminate()
            self._nginx.wait(10)
        if self._pg_data is not None:
            subprocess.run(as_unprivileged([str(pg_bindir() / "pg_ctl"), "-D", str(self._pg_data),
                                            "-m", "immediate", "-w", "stop"]),
                           capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=Path, default=REPO / "examples" / "notes")
    parser.add_argument("--lease-seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    cluster = Cluster(notes=args.notes.resolve(), lease_seconds=args.lease_seconds,
                      workers=args.workers)
    try:
        cluster.start()
        print(f"postgresql: {cluster.store_url}")
        for node in cluster.nodes:
            print(f"{node.name:8} --role {node.role:8} {node.url}  (log {node.log})")
        print(f"nginx:   {cluster.url}/  (load-balances the web nodes)")
        print("Ctrl+C stops everything")
        signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
