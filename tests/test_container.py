"""The Dockerfile builds and its image runs: podman builds it on a debootstrap stand-in base
(CI reaches no registry), then runs it with a named volume and with bind mounts, and checks
/healthz, the feeds against `make run`'s config, the store on the volume, a restart, the
non-root user, any uid on /data, and the webhook's `git pull` in a mounted notes repository.
Also (fast): the lock files pin every dependency pyproject.toml declares."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feedsvc.config import load_config
from feedsvc.store import open_store
from feedsvc.web import create_app

from conftest import REPO

SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "git",
                 "ca-certificates")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
BASE_URL = "http://feeds.example.org/"
SECRET = "container-s3cret"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": "/tmp", "PATH": "/usr/bin:/bin"}


# -- lock files (fast) -----------------------------------------------------------------------

def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_lock_files_pin_every_declared_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    test = {_name(r) for r in project["optional-dependencies"]["test"]}
    runtime_pins = _pins(REPO / "requirements.lock")
    test_pins = _pins(REPO / "requirements-test.lock")
    assert sorted(runtime - set(runtime_pins)) == [], "run `make lock`"
    assert sorted((runtime | test) - set(test_pins)) == [], "run `make lock`"
    assert all(runtime_pins[n] == test_pins[n] for n in runtime_pins if n in test_pins)
    assert "setuptools" in runtime_pins  # the image builds the package without build isolation


# -- the stand-in base image -----------------------------------------------------------------

def _cache_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/cache/feedsvc-test")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "feedsvc-test"


def _debian_mirror() -> str:
    """The Debian mirror apt is configured with (deb822 or one-line sources)."""
    files = sorted(Path("/etc/apt").glob("sources.list.d/*.sources")) + [Path("/etc/apt/sources.list")]
    for f in files:
        text = f.read_text() if f.exists() else ""
        for m in re.finditer(r"^\s*(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, re.M):
            uri = m.group(1)
            if uri.rstrip("/").endswith("/debian"):
                return uri
    return "http://deb.debian.org/debian"


def _podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    # crun refuses this kernel's cgroup mix; runc works everywhere.
    result = subprocess.run(["podman", "--runtime", "runc", *args], capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {result.returncode}\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _ulimits() -> list[str]:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard = 1048576 if hard == resource.RLIM_INFINITY else hard
    return ["--ulimit", f"nofile={hard}:{hard}", "--ulimit", "nproc=32768:32768"]


def _minbase_tarball(cache: Path) -> Path:
    """`debootstrap --variant=minbase` with Python, pip and git, cached as a tarball."""
    mirror = _debian_mirror()
    key = hashlib.sha256(f"{SUITE} {mirror} {BASE_PACKAGES}".encode()).hexdigest()[:12]
    tarball = cache / f"{SUITE}-minbase-{key}.tar"
    if tarball.exists():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        root = Path(tmp) / "root"
        subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                        SUITE, str(root), mirror], check=True, capture_output=True, timeout=900)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (root / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        partial = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."],
                       check=True, timeout=300)
        partial.rename(tarball)
    return tarball


def _base_image(cache: Path) -> str:
    """The tarball imported, plus the host's extra CAs (pip in the build trusts what the host
    trusts) and the env a python image has; reused while nothing it is made of changes."""
    tarball = _minbase_tarball(cache)
    cas = sorted(HOST_CA_DIR.glob("**/*.crt")) if HOST_CA_DIR.is_dir() else []
    digest = hashlib.sha256(tarball.name.encode())
    for ca in cas:
        digest.update(ca.read_bytes())
    tag = f"localhost/feedsvc-test-base:{digest.hexdigest()[:12]}"
    if _podman("image", "exists", tag, check=False).returncode == 0:
        return tag
    raw = f"localhost/feedsvc-test-minbase:{tarball.stem}"
    if _podman("image", "exists", raw, check=False).returncode != 0:
        _podman("import", str(tarball), raw, timeout=300)
    with tempfile.TemporaryDirectory() as ctx:
        (Path(ctx) / "ca").mkdir()
        for i, ca in enumerate(cas):
            shutil.copy(ca, Path(ctx) / "ca" / f"host-{i}-{ca.name}")
        (Path(ctx) / "Containerfile").write_text(
            f"FROM {raw}\n"
            "COPY ca/ /usr/local/share/ca-certificates/\n"
            "RUN update-ca-certificates\n"
            "ENV LANG=C.UTF-8 PIP_BREAK_SYSTEM_PACKAGES=1 "
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            'CMD ["python"]\n')
        _podman("build", "--format", "docker", *_ulimits(), "-t", tag, ctx, timeout=300)
    return tag


def _pip_build_args() -> list[str]:
    """The host's package index settings (env or pip config), except local file:// ones the
    build cannot see; none means PyPI, reached with the CAs copied into the base."""
    values: dict[str, str] = {}
    try:
        listed = subprocess.run(["python3", "-m", "pip", "config", "list"], capture_output=True,
                                text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        listed = ""
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        option = key.rsplit(".", 1)[-1]
        values[option] = value.strip().strip("'\"")
    for option in ("index-url", "extra-index-url", "trusted-host"):
        env = os.environ.get("PIP_" + option.upper().replace("-", "_"))
        if env:
            values[option] = env
    args = []
    for option in ("index-url", "extra-index-url", "trusted-host"):
        kept = [v for v in values.get(option, "").split() if not v.startswith("file:")]
        if kept:
            args += ["--build-arg", f"PIP_{option.upper().replace('-', '_')}={' '.join(kept)}"]
    return args


def _build(context: Path, base: str, tag: str) -> str:
    started = time.monotonic()
    output = _podman("build", "--format", "docker", *_ulimits(), *_pip_build_args(),
                     "--build-arg", f"BASE={base}", "-t", tag, str(context), timeout=900).stdout
    print(f"{tag} built in {time.monotonic() - started:.0f} s")
    return output


@pytest.fixture(scope="module")
def base_image() -> str:
    return _base_image(_cache_dir())


@pytest.fixture(scope="module")
def image(base_image: str) -> Iterator[str]:
    tag = f"localhost/feedsvc-test:{uuid.uuid4().hex[:8]}"
    _build(REPO, base_image, tag)
    try:
        yield tag
    finally:
        _podman("rmi", "-f", tag, check=False)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_source_edit_reuses_the_dependency_layer(image: str, base_image: str,
                                                   tmp_path: Path) -> None:
    context = tmp_path / "context"
    shutil.copytree(REPO, context, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "data", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis"))
    with (context / "feedsvc" / "__init__.py").open("a") as f:
        f.write("# edited\n")
    tag = f"localhost/feedsvc-test-edit:{uuid.uuid4().hex[:8]}"
    try:
        output = _build(context, base_image, tag)
    finally:
        _podman("rmi", "-f", tag, check=False)
    steps = re.split(r"^STEP \d+/\d+: ", output, flags=re.M)
    install = [s for s in steps if "pip install -r requirements.lock" in s]
    assert len(install) == 1 and "--> Using cache" in install[0]
    source = [s for s in steps if s.startswith("COPY feedsvc ")]
    assert len(source) == 1 and "--> Using cache" not in source[0]


# -- running containers ----------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Container:
    """One `podman run -d` of the image on a free 127.0.0.1 port; removed by `remove()`."""

    def __init__(self, image: str, *args: str) -> None:
        self.port = _free_port()
        self.name = f"feedsvc-test-{uuid.uuid4().hex[:8]}"
        _podman("run", "-d", "--name", self.name, "-p", f"127.0.0.1:{self.port}:8080",
                *_ulimits(), *args, image)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get_json(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)

    def wait_healthy(self, timeout: float = 90) -> dict[str, Any]:
        """Poll /healthz until it answers with a finished scan."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                health = self.get_json("/healthz")
                if health.get("last_scan"):
                    return dict(health)
            except (OSError, http.client.HTTPException, AssertionError, ValueError):
                pass
            if self.state() not in ("running", "created"):
                break
            time.sleep(0.5)
        raise AssertionError(f"{self.name} not healthy ({self.state()}):\n{self.logs()}")

    def state(self) -> str:
        return _podman("inspect", "--format", "{{.State.Status}}", self.name, check=False).stdout.strip()

    def logs(self) -> str:
        result = _podman("logs", self.name, check=False)
        return (result.stdout + result.stderr)[-4000:]

    def exec(self, *command: str) -> str:
        return _podman("exec", self.name, *command).stdout.strip()

    def wait_exit(self, timeout: float = 60) -> int:
        return int(_podman("wait", self.name, timeout=timeout).stdout.strip().splitlines()[-1])

    def remove(self) -> None:
        _podman("rm", "-f", "-t", "5", self.name, check=False, timeout=60)


@pytest.fixture
def containers() -> Iterator[list[Container]]:
    started: list[Container] = []
    try:
        yield started
    finally:
        for c in started:
            c.remove()


@pytest.fixture
def volume() -> Iterator[str]:
    name = f"feedsvc-test-{uuid.uuid4().hex[:8]}"
    _podman("volume", "create", name)
    try:
        yield name
    finally:
        _podman("volume", "rm", "-f", name, check=False)


def _without_dates(updates: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k not in ("date", "published", "updated")}
            for item in updates["items"]]


def _make_run_updates(tmp_path: Path) -> dict[str, Any]:
    """/updates.json as `make run`'s config gives it, with the same base_url override."""
    config = load_config(REPO / "config" / "feedsvc.toml",
                         env={"FEEDSVC_SITE_BASE_URL": BASE_URL,
                              "FEEDSVC_STORE_DATA_DIR": str(tmp_path / "local-data")})
    store = open_store(config.store_url)
    try:
        app = create_app(config, store=store)
        app.extensions["feedsvc"].scanner.run()
        return dict(app.test_client().get("/updates.json?page=1").get_json())
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_image_serves_the_examples_keeps_its_store_and_runs_as_any_uid(
        image: str, volume: str, containers: list[Container], tmp_path: Path) -> None:
    inspected = json.loads(_podman("image", "inspect", image).stdout)[0]
    assert inspected["Config"]["User"] == "65534:0"
    assert inspected["Healthcheck"]["Test"][:2] == ["CMD", "python"]  # kept: --format docker

    first = Container(image, "-v", f"{volume}:/data", "-e", f"FEEDSVC_SITE_BASE_URL={BASE_URL}")
    containers.append(first)
    health = first.wait_healthy()
    assert health["status"] == "ok"
    assert first.exec("id", "-u") == "65534"
    status_line = [line for line in first.exec("cat", "/proc/1/status").splitlines()
                   if line.startswith("Uid:")]
    assert status_line[0].split()[1:] == ["65534"] * 4  # the server itself, not just exec

    # Same config as `make run`: same entries, categories (default_category), author, zone.
    updates = first.get_json("/updates.json?page=1")
    local = _make_run_updates(tmp_path)
    assert updates["total"] == local["total"] == 15
    assert _without_dates(updates) == _without_dates(local)
    dated = {i["url"]: (i["date"], i["published"]) for i in local["items"]
             if not i["url"].endswith(("reading-list", "interview-checklist"))}
    assert {i["url"]: (i["date"], i["published"]) for i in updates["items"]
            if i["url"] in dated} == dated
    status, atom = first.get("/feeds/all.atom")
    assert status == 200
    assert b"<id>tag:feeds.example.org,2024:feed/all</id>" in atom  # ids from base_url's host
    assert b"<name>feedsvc example notes</name>" in atom
    assert f'<link href="{BASE_URL}feeds/all.atom" rel="self" '.encode() in atom
    assert _podman("healthcheck", "run", first.name, check=False).returncode == 0
    # /notes is reached through the config's ../examples/notes link: media resolve inside it.
    png = (REPO / "examples" / "notes" / "Large Model" / "attention-tiles.png").read_bytes()
    assert first.get("/media/notes/Large%20Model/attention-tiles.png") == (200, png)
    assert first.get("/media/notes/..%2f..%2fetc%2fpasswd")[0] == 404

    # The store is on the volume, and a restart keeps it (first-seen dates do not move).
    mount = Path(_podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip())
    assert (mount / "feedsvc.db").stat().st_size > 0
    _podman("restart", "-t", "10", first.name, timeout=60)
    first.wait_healthy()
    assert first.get_json("/updates.json?page=1")["items"] == updates["items"]

    # Another uid (group 0, as OpenShift and `--user N` run it) opens the same store.
    first.remove()
    other = Container(image, "--user", "1000", "-v", f"{volume}:/data",
                      "-e", f"FEEDSVC_SITE_BASE_URL={BASE_URL}")
    containers.append(other)
    other.wait_healthy()
    assert other.exec("id", "-u") == "1000"
    assert other.get_json("/updates.json?page=1")["items"] == updates["items"]


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=GIT_ENV)


def _group_writable(path: Path) -> None:
    """Owned by the host user (not the container's uid), writable for group 0."""
    for p in [path, *path.rglob("*")]:
        os.chown(p, os.getuid(), 0, follow_symlinks=False)
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | 0o070)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_mounted_notes_repository_is_pulled_by_the_webhook_and_bind_mounted_data_works(
        image: str, containers: list[Container], tmp_path: Path) -> None:
    upstream = tmp_path / "upstream.git"
    _git("init", "--bare", "-b", "main", str(upstream), cwd=tmp_path)
    author = tmp_path / "author"
    _git("clone", str(upstream), str(author), cwd=tmp_path)
    (author / "NLP").mkdir()
    (author / "NLP" / "first.md").write_text("---\ndate: 2025-01-01\n---\nfirst\n")
    (author / "NLP" / "undated.md").write_text("# Undated\n\nfirst seen by the scanner\n")
    _git("add", ".", cwd=author)
    _git("commit", "-m", "first", cwd=author)
    _git("push", "origin", "HEAD:main", cwd=author)
    notes = tmp_path / "notes"
    _git("clone", str(upstream), str(notes), cwd=tmp_path)
    _git("remote", "set-url", "origin", "/upstream.git", cwd=notes)
    config = tmp_path / "config"
    config.mkdir()
    (config / "feedsvc.toml").write_text(
        (REPO / "config" / "feedsvc.toml").read_text()
        .replace('path = "../examples/notes"', 'path = "/notes"\npull = "git"'))
    data = tmp_path / "data"
    data.mkdir()
    for p in (upstream, notes, data):
        _group_writable(p)
    mounts = ["-v", f"{notes}:/notes", "-v", f"{upstream}:/upstream.git", "-v", f"{data}:/data",
              "-v", f"{config}:/config:ro", "-e", "FEEDSVC_CONFIG=/config/feedsvc.toml",
              "-e", f"FEEDSVC_SITE_BASE_URL={BASE_URL}", "-e", f"FEEDSVC_WEBHOOK_SECRET={SECRET}"]

    served = Container(image, *mounts)
    containers.append(served)
    served.wait_healthy()
    before = served.get_json("/updates.json")["items"]
    assert sorted(i["title"] for i in before) == ["Undated", "first"]
    assert (data / "feedsvc.db").exists()
    # The checkout belongs to the host's uid: git would refuse it ("dubious ownership").
    assert served.exec("git", "config", "--system", "--get-all", "safe.directory") == "*"
    assert notes.stat().st_uid != 65534

    (author / "NLP" / "pushed.md").write_text("---\ntitle: Pushed\ndate: 2025-01-02\n---\nnew\n")
    _git("add", ".", cwd=author)
    _git("commit", "-m", "second", cwd=author)
    _git("push", "origin", "HEAD:main", cwd=author)
    request = urllib.request.Request(served.url("/hooks/refresh"), method="POST", data=b"{}",
                                     headers={"Authorization": f"Bearer {SECRET}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
    deadline = time.monotonic() + 60
    titles: list[str] = []
    while time.monotonic() < deadline and "Pushed" not in titles:
        time.sleep(0.5)
        titles = [i["title"] for i in served.get_json("/updates.json")["items"]]
    assert "Pushed" in titles, (served.get_json("/healthz"), served.logs())
    assert (notes / "NLP" / "pushed.md").exists()
    assert served.get_json("/healthz")["status"] == "ok"

    # A restart keeps the store on the bind mount: the undated note keeps its first-seen time.
    undated = [i for i in before if i["title"] == "Undated"]
    served.remove()
    again = Container(image, *mounts)
    containers.append(again)
    again.wait_healthy()
    items = again.get_json("/updates.json")["items"]
    assert [i for i in items if i["title"] == "Undated"] == undated
    assert sorted(i["title"] for i in items) == ["Pushed", "Undated", "first"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_unwritable_bind_mounted_data_is_refused_with_a_clear_message(
        image: str, containers: list[Container], tmp_path: Path) -> None:
    data = tmp_path / "root-only"
    data.mkdir()
    data.chmod(0o755)
    os.chown(data, 0, 0)
    refused = Container(image, "-v", f"{data}:/data")
    containers.append(refused)
    assert refused.wait_exit() == 1
    logs = refused.logs()
    assert "store folder /data (FEEDSVC_STORE_DATA_DIR) is not writable by uid 65534 gid 0" in logs
    assert "chown -R 65534:0" in logs
    assert list(data.iterdir()) == []
