"""The `feedsvc` command: serve, scan, check, export, migrate. Thin: every verb calls the same
services the web app uses. Exit codes: 0 ok, 1 problems found by check, 2 usage/config."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from feedsvc.config import Config
from feedsvc.config import load_config
from feedsvc.config import redacted
from feedsvc.errors import ConfigError
from feedsvc.errors import FeedsvcError
from feedsvc.errors import StoreVersionError
from feedsvc.log import configure_logging
from feedsvc.model import ScanJob
from feedsvc.model import ScanReport
from feedsvc.scan.scanner import Scanner
from feedsvc.store import Store
from feedsvc.store import open_store

logger = logging.getLogger(__name__)
config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                             help="config file (default: $FEEDSVC_CONFIG, ./config/feedsvc.toml)")


def _load(config_path: str | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as e:
        click.echo(f"feedsvc: config error: {e}", err=True)
        sys.exit(2)


def _open(config: Config, *, migrate: bool = True) -> Store:
    """Open the store, migrating it first (under the schema lock) unless told not to."""
    try:
        return open_store(config.store_url, keep_per_category=config.store.keep_per_category,
                          tombstone_days=config.feeds.tombstone_days, migrate=migrate)
    except StoreVersionError as e:
        click.echo(f"feedsvc: {e}", err=True)
        sys.exit(1)
    except FeedsvcError as e:
        click.echo(f"feedsvc: cannot open the store: {e}", err=True)
        sys.exit(2)


@click.group()
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.version_option(package_name="feedsvc")
def main(log_level: str) -> None:
    """Publish folders of Markdown notes as RSS, Atom and JSON feeds."""
    configure_logging(log_level)


@main.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8080, show_default=True, type=int, help="port to listen on")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="pre-forked server processes (default: the number of CPUs)")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(min=1),
              help="request threads per worker")
@click.option("--role", default="all", show_default=True,
              type=click.Choice(["all", "web", "scanner"]),
              help="web: serve only; scanner/all: also compete for the scanner lease")
@click.pass_context
def serve(ctx: click.Context, config_path: str | None, host: str, port: int,
          workers: int | None, threads: int, role: str) -> None:
    """Serve feeds and pages (granian, pre-forked) and, unless --role web, scan and poll."""
    import os

    from feedsvc.serve.server import serve as run_server

    config = _load(config_path)
    _open(config).close()  # create (or check) the schema once, before any process forks
    if config.publish.dir and role != "web":
        from feedsvc.web.mirror import prepare_root
        try:
            prepare_root(Path(config.publish.dir), label="publish.dir")
        except ConfigError as e:
            click.echo(f"feedsvc: config error: {e}", err=True)
            sys.exit(2)
    parent = ctx.parent.params if ctx.parent is not None else {}
    run_server(config, host=host, port=port, workers=workers or os.cpu_count() or 1,
               threads=threads, role=role, log_level=str(parent.get("log_level", "INFO")))


@main.command()
@config_option
@click.option("--source", "sources", multiple=True, help="scan only this source (repeatable)")
@click.option("--allow-mass-delete", is_flag=True,
              help="apply even if more than store.max_delete_fraction of a source would go")
@click.option("--json", "as_json", is_flag=True, help="print the ScanReport as JSON")
def scan(config_path: str | None, sources: tuple[str, ...], allow_mass_delete: bool,
         as_json: bool) -> None:
    """Scan the sources once and apply the changes."""
    config = _load(config_path)
    store = _open(config)
    scanner = Scanner(config, store)
    report = _run(scanner, sources, allow_mass_delete=allow_mass_delete, dry_run=False)
    _print_report(report, as_json)
    sys.exit(1 if report.source_errors else 0)


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="print the ScanReport as JSON")
def check(config_path: str | None, as_json: bool) -> None:
    """Validate the config and every source file; exit 1 if anything is wrong."""
    config = _load(config_path)
    store = _open(config)
    if not as_json:
        click.echo(f"config: {config.path or '<defaults>'}")
        click.echo(json.dumps(redacted(config), ensure_ascii=False, indent=2))
    report = _run(Scanner(config, store), (), allow_mass_delete=False, dry_run=True)
    _print_report(report, as_json)
    sys.exit(0 if report.is_ok else 1)


@main.command()
@config_option
def migrate(config_path: str | None) -> None:
    """Bring the store's schema to this release (safe to run while others start)."""
    config = _load(config_path)
    store = _open(config, migrate=False)
    try:
        status = store.migrate()
    except StoreVersionError as e:
        click.echo(f"feedsvc: {e}", err=True)
        sys.exit(1)
    except FeedsvcError as e:
        click.echo(f"feedsvc: cannot migrate the store: {e}", err=True)
        sys.exit(2)
    finally:
        store.close()
    click.echo(status.describe())


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@config_option
@click.option("--no-scan", is_flag=True, help="export what the store holds, without scanning")
def export(out_dir: str, config_path: str | None, no_scan: bool) -> None:
    """Write the static mirror (feeds, OPML, pages, media, assets) into OUT_DIR."""
    from feedsvc.serve.app import build_app
    from feedsvc.web.export import export_site

    config = _load(config_path)
    store = _open(config)
    if not no_scan:
        _run(Scanner(config, store), (), allow_mass_delete=False, dry_run=False)
    try:
        written = export_site(build_app(config, store=store), Path(out_dir))
    except ConfigError as e:
        click.echo(f"feedsvc: {e}", err=True)
        sys.exit(2)
    click.echo(f"wrote {len(written)} files to {out_dir}")


def _run(scanner: Scanner, sources: tuple[str, ...], *, allow_mass_delete: bool,
         dry_run: bool) -> ScanReport:
    job = ScanJob(reason="cli", sources=tuple(sources) or None,
                  allow_mass_delete=allow_mass_delete, dry_run=dry_run)
    try:
        if sys.stderr.isatty():
            with click.progressbar(length=1, label="reading notes", file=sys.stderr) as bar:
                def progress(done: int, total: int) -> None:
                    bar.length = max(total, 1)
                    bar.update(done - bar.pos)
                return scanner.run(job, progress)
        return scanner.run(job)
    except KeyError as e:
        click.echo(f"feedsvc: {e.args[0]}", err=True)
        sys.exit(2)


def _print_report(report: ScanReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    rows: list[tuple[str, Any]] = [
        ("added", len(report.added)), ("updated", len(report.updated)),
        ("renamed", len(report.renamed)), ("removed", len(report.removed)),
        ("unchanged", report.unchanged), ("skipped", len(report.problems)),
    ]
    for label, value in rows:
        click.echo(f"{label:>10}: {value}")
    for kind, ids in (("added", report.added), ("updated", report.updated),
                      ("renamed", report.renamed), ("removed", report.removed)):
        for entry_id in ids[:50]:
            click.echo(f"  {kind}: {entry_id}")
        if len(ids) > 50:
            click.echo(f"  ... and {len(ids) - 50} more {kind}")
    for problem in report.problems:
        click.echo(f"skipped: {problem}")
    for problem in report.source_errors:
        click.echo(f"source not applied: {problem}", err=True)
