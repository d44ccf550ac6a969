"""The `imgpipe` command: start the stack, run its processes, apply its configuration."""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import time
from pathlib import Path

import click

from imgpipe.logs import configure_logging
from imgpipe.settings import Settings

log = logging.getLogger("imgpipe")


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as error:
        raise click.UsageError(str(error)) from None


def _exit_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """imgpipe: upload images straight to object storage; derivatives are made in the background."""


@cli.command()
@click.option("--var-dir", default="var", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where data, logs and pid files go.")
@click.option("--port", default=8000, show_default=True, help="Port of the API.")
@click.option("--workers", default=1, show_default=True, help="How many RQ workers to start.")
@click.option("--detach", is_flag=True, help="Start in the background and return; stop with `imgpipe down`.")
def up(var_dir: Path, port: int, workers: int, detach: bool):
    """Start Redis, MinIO (with the bucket and its notification), the API, the relay and workers.

    Example: imgpipe up --workers 2   (Ctrl-C stops everything)
    """
    from imgpipe.stack import Stack, StackError

    configure_logging()
    settings = load_settings()
    settings = dataclasses.replace(settings, database_path=str(Path(settings.database_path).resolve()))
    stack = Stack(settings, var_dir, api_port=port, workers=workers, minio_console_port=9001)
    try:
        stack.start()
    except StackError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"""imgpipe is up:
  API          {stack.api_url}  (health: {stack.api_url}/healthz)
  MinIO        {settings.s3_endpoint_url}  bucket {settings.s3_bucket_name}, console http://127.0.0.1:9001
  Redis        {settings.redis_url}  events list {settings.events_key}
  relay, {workers} worker(s)  queue {settings.queue_name}
  database     {settings.database_path}
  logs         {stack.var_dir / 'log'}""")
    if detach:
        click.echo("Running in the background: `make down` (or `imgpipe down`) stops it.")
        return
    click.echo("Press Ctrl-C to stop.")
    _exit_on_sigterm()
    try:
        while all(process.poll() is None for process in stack.processes.values()):
            time.sleep(0.5)
        dead = [name for name, process in stack.processes.items() if process.poll() is not None]
        click.echo(f"{', '.join(dead)} exited; see {stack.var_dir / 'log'}. Stopping the rest.", err=True)
    except (KeyboardInterrupt, SystemExit):
        click.echo("\nStopping…")
    finally:
        stack.stop()
        click.echo("Stopped.")


@cli.command()
@click.option("--var-dir", default="var", show_default=True, type=click.Path(file_okay=False, path_type=Path))
def down(var_dir: Path):
    """Stop a stack started with `imgpipe up --detach`.

    Example: imgpipe down
    """
    from imgpipe.stack import stop_recorded

    stopped = stop_recorded(var_dir)
    click.echo(f"Stopped {', '.join(stopped)}." if stopped else "Nothing was running.")


@cli.command()
def setup():
    """Create the bucket and its event notification; running it again changes nothing.

    Example: S3_ENDPOINT_URL=http://minio:9000 imgpipe setup
    """
    from imgpipe.storage import Storage
    from notify_config.apply import apply

    configure_logging()
    settings = load_settings()
    changes = apply(Storage(settings).client, settings.s3_bucket_name)
    click.echo("\n".join(changes) if changes else "Bucket and notification already configured.")


@cli.command()
def relay():
    """Turn MinIO's events into jobs and sweep for uploads whose event was missed.

    Example: REDIS_URL=redis://127.0.0.1:6379/0 imgpipe relay
    """
    import redis

    from imgpipe import db as uploads
    from imgpipe.storage import Storage
    from processor.relay import Relay

    configure_logging()
    _exit_on_sigterm()
    settings = load_settings()
    connection = redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=3,
                                      health_check_interval=15)
    database = uploads.connect(settings.database_path)
    uploads.ensure_schema(database)
    try:
        Relay(settings, connection, database, Storage(settings)).run_forever()
    except SystemExit:
        log.info("relay stopped")


@cli.command()
@click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
def worker(burst: bool):
    """Run an RQ worker that makes the derivatives.

    Example: imgpipe worker
    """
    import redis
    from rq import Worker

    import processor.tasks  # noqa: F401  imported once here, inherited by every job process
    from processor.jobs import make_queue

    configure_logging()
    settings = load_settings()
    connection = redis.Redis.from_url(settings.redis_url)
    worker = Worker([make_queue(connection, settings)], connection=connection, maintenance_interval=30)
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


def main():
    cli()


if __name__ == "__main__":
    main()
