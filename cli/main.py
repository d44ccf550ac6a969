"""The `imgpipe` command: start the stack, run its processes, apply its configuration."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import click

from imgpipe.logs import configure_logging
from imgpipe.settings import Settings
from imgpipe.upload_tokens import MAX_LIFETIME
from imgpipe.version import VERSION

log = logging.getLogger("imgpipe")


# Where the commands a user runs by hand find the local stack's credentials (cli.credentials).
USER_VAR_DIR = Path("var")


def load_settings(var_dir: Path | None = None) -> Settings:
    """The settings from the environment; with var_dir, over that stack's credentials file.

    Only the commands a user runs by hand read the file: the stack's own processes get every
    setting they may have from their environment, and no more (a worker has no root keys)."""
    from cli import credentials

    file_values = credentials.read(var_dir / credentials.FILE_NAME) if var_dir is not None else {}
    try:
        return Settings.from_env(credentials.overlay(file_values, os.environ))
    except ValueError as error:
        raise click.UsageError(str(error)) from None


def _exit_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def open_current_database(settings: Settings):
    """The database, once its schema is known to be current: a process refuses to start on
    one `imgpipe setup` has not migrated, with the sentence that says so."""
    from imgpipe import uploads

    try:
        database = uploads.connect(settings.database)
        uploads.require_schema(database)
    except (ValueError, uploads.SchemaBehind) as error:
        raise click.ClickException(str(error)) from None
    return database


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="imgpipe")
def cli():
    """imgpipe: upload images straight to object storage; derivatives are made in the background."""


@cli.command()
@click.option("--var-dir", default="var", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where data, logs and pid files go.")
@click.option("--port", default=8000, show_default=True, help="Port of the API.")
@click.option("--workers", default=1, show_default=True, help="How many RQ workers to start.")
@click.option("--detach", is_flag=True, help="Start in the background and return; stop with `imgpipe down`.")
@click.option("--minio-queue-dir", is_flag=True,
              help="Let MinIO keep events on disk while Redis is down (each event then waits up to 3 s).")
@click.option("--console-port", default=9001, show_default=True, help="Port of MinIO's web console.")
def up(var_dir: Path, port: int, workers: int, detach: bool, minio_queue_dir: bool, console_port: int):
    """Start Redis, MinIO (with the bucket and its notification), the API, the relay and workers.

    A process that dies is started again, after a delay that grows while it keeps dying.

    Example: imgpipe up --workers 2   (Ctrl-C stops everything)
    """
    from cli import credentials
    from cli.stack import Stack, StackError

    credentials_file = var_dir / credentials.FILE_NAME
    credentials.ensure(credentials_file)
    settings = load_settings(var_dir)
    configure_logging(settings)
    if not settings.database_url:
        database = Path(settings.database_path or var_dir / "imgpipe.db")  # unset: with the rest of the stack's data
        settings = dataclasses.replace(settings, database_path=str(database.resolve()))
    if settings.presets:  # an absolute path: the stack's processes run from the project's root, not from here
        settings = dataclasses.replace(settings, presets=str(Path(settings.presets).resolve()))
    stack = Stack(settings, var_dir, api_port=port, workers=workers, minio_console_port=console_port,
                  minio_queue_dir=minio_queue_dir)
    try:
        stack.start()
        link = stack.login_link() if settings.api_token else "(no IMGPIPE_API_TOKEN: open to this machine)"
    except StackError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"""imgpipe is up:
  page         {link}
               (a one-time login link for the upload page and /rq; `imgpipe login` prints another)
  API          {stack.api_url}  (health: {stack.api_url}/healthz)
  MinIO        {settings.s3_endpoint_url}  bucket {settings.s3_bucket_name}, console http://127.0.0.1:{console_port}
  Redis        {settings.redis_address}  events list {settings.events_key}
  relay, {workers} worker(s)  queue {settings.queue_name}
  database     {_without_password(settings.database_url) or settings.database_path}
  credentials  {credentials_file}  (read by the CLI; scripts: set -a; . {credentials_file}; set +a)
  logs         {stack.var_dir / 'log'}""")
    if detach:
        click.echo("Running in the background: `make down` (or `imgpipe down`) stops it.")
        return
    click.echo("Press Ctrl-C to stop.")
    _exit_on_sigterm()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where a shell started it ignoring SIGINT
    supervisor_pidfile = stack.path("run", "up.pid")
    supervisor_pidfile.write_text(str(os.getpid()))  # `imgpipe down` asks this process to stop it all
    try:
        stack.keep_running()
    except (KeyboardInterrupt, SystemExit):
        click.echo("\nStopping…")
    finally:
        stack.stop()
        supervisor_pidfile.unlink(missing_ok=True)
        click.echo("Stopped.")


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl() if parts.password else url


@cli.command()
@click.option("--var-dir", default="var", show_default=True, type=click.Path(file_okay=False, path_type=Path))
def down(var_dir: Path):
    """Stop a stack started with `imgpipe up --detach`.

    Example: imgpipe down
    """
    from cli.stack import stop_recorded

    stopped = stop_recorded(var_dir)
    click.echo(f"Stopped {', '.join(stopped)}." if stopped else "Nothing was running.")


@cli.command()
def setup():
    """Migrate the database's schema, then create the bucket, its event notification and the
    store identities the services sign with; running it again changes nothing.

    Run it once per deployment before starting (or after upgrading) the API, the relay and
    the workers, which refuse a database whose schema is behind. It alone uses the store's root
    account (S3_ACCESS_KEY); a changed S3_<ROLE>_SECRET_KEY is set in the store (a rotation).
    With IMGPIPE_STORE_IDENTITIES=given it creates nothing in the store and checks the keys
    instead: above all, that the upload key can neither read nor list.

    Example: DATABASE_URL=postgresql://imgpipe:secret@db:5432/imgpipe S3_ENDPOINT_URL=http://minio:9000 imgpipe setup
    """
    from imgpipe import uploads
    from imgpipe.storage import Storage
    from imgpipe.store_identities import ROOT
    from notify_config.apply import apply
    from notify_config.definition import public_prefixes
    from notify_config.identities import IdentityProblem, apply_identities, check_given

    settings = load_settings()
    configure_logging(settings)
    try:
        database = uploads.connect(settings.database)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    applied = uploads.ensure_schema(database)
    for migration in applied:
        click.echo(f"Database ({database.engine}): applied migration {migration.version}, {migration.description}.")
    if not applied:
        click.echo(f"Database ({database.engine}) already at schema version {uploads.schema_version(database)}.")
    if settings.store_identities == "given":
        try:
            checked = check_given(settings)
        except IdentityProblem as error:
            raise click.ClickException(f"IMGPIPE_STORE_IDENTITIES=given: {error}") from None
        click.echo("Store identities are the operator's (IMGPIPE_STORE_IDENTITIES=given); bucket and"
                   " notification left as they are.\n" + "\n".join(f"checked: {line}" for line in checked))
        return
    changes = apply(Storage(settings, ROOT).client, settings.s3_bucket_name,
                    public_prefixes=public_prefixes(settings.delivery, settings.derivative_presets.names))
    click.echo("\n".join(changes) if changes else "Bucket and notification already configured.")
    changes = apply_identities(settings)
    click.echo("\n".join(changes) if changes else "Store identities already configured.")


@cli.command()
def relay():
    """Turn MinIO's events into jobs and sweep for uploads whose event was missed.

    Example: REDIS_URL=redis://127.0.0.1:6379/0 imgpipe relay
    """
    from imgpipe.redis_connection import redis_client
    from imgpipe.storage import Storage
    from imgpipe.store_identities import WORKER
    from processor.relay import Relay

    _exit_on_sigterm()
    settings = load_settings()
    configure_logging(settings)
    connection = redis_client(settings, "relay")
    database = open_current_database(settings)
    try:
        Relay(settings, connection, database, Storage(settings, WORKER)).run_forever()
    except SystemExit:
        log.info("relay stopped")


@cli.command()
@click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
def worker(burst: bool):
    """Run an RQ worker that makes the derivatives, started again at once if it dies.

    Example: imgpipe worker
    """
    import processor.tasks  # noqa: F401  imported once here, inherited by every worker process
    from processor.worker import supervise

    settings = load_settings()
    configure_logging(settings)
    open_current_database(settings).close()
    supervise(settings, burst=burst)


DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]
REPROCESS_NICENESS = 10


@cli.command()
@click.option("--preset", "only", multiple=True, metavar="NAME",
              help="Make only this preset again (repeatable); by default every preset whose objects are out of date.")
@click.option("--status", "statuses", multiple=True, default=["completed"], show_default=True,
              type=click.Choice(["completed", "failed"]),
              help="Uploads in this status (repeatable). A failed upload is tried again from its original.")
@click.option("--since", type=click.DateTime(DATE_FORMATS), help="Only uploads created at or after this UTC time.")
@click.option("--until", type=click.DateTime(DATE_FORMATS), help="Only uploads created before this UTC time.")
@click.option("--prune", is_flag=True, help="Also delete the objects of presets (and formats) no longer in use.")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Jobs out at once. 1 keeps all workers but one free for new uploads.")
@click.option("--dry-run", is_flag=True, help="Only say how many uploads would be reprocessed.")
def reprocess(only: tuple[str, ...], statuses: tuple[str, ...], since, until, prune: bool, jobs: int, dry_run: bool):
    """Re-make stored uploads' objects from their originals after the presets changed.

    Reads IMGPIPE_PRESETS like the workers do (they must run with the same file), picks the
    selected uploads whose objects differ from what the presets make now, and has the workers
    re-make them on a queue they take after new uploads. Ctrl-C stops it; the same command
    again goes on where it stopped, and running it when nothing changed does nothing. Exits 0
    when every upload taken on is done.

    Example: imgpipe reprocess --preset thumbnail --since 2026-01-01 --prune
    """
    import secrets

    from cli.progress import ProgressBoard
    from cli.reprocess import Selection, reprocess as run_reprocess, uploads_to_reprocess
    from imgpipe.queues import make_queue, make_reprocess_queue, reprocess_answers_key
    from imgpipe.redis_connection import redis_client

    settings = load_settings(USER_VAR_DIR)
    configure_logging(settings)
    presets = settings.derivative_presets
    unknown = sorted(set(only) - set(presets.names))
    if unknown:
        raise click.UsageError(f"no preset named {', '.join(unknown)} in {presets.source}; presets are"
                               f" {', '.join(presets.names)}")
    selection = Selection(statuses=tuple(statuses), only=tuple(only) or None, prune=prune,
                          created_from=_utc_timestamp(since), created_before=_utc_timestamp(until))
    upload_ids = uploads_to_reprocess(open_current_database(settings), presets, selection)
    click.echo(f"presets {presets.version} ({presets.source}): {len(upload_ids)} upload(s) to reprocess")
    if dry_run or not upload_ids:
        return
    connection = redis_client(settings, "cli")
    os.nice(REPROCESS_NICENESS)  # its polling, like the workers' reprocess jobs, gives way to new uploads
    board = ProgressBoard()
    bar = board.add("reprocess", len(upload_ids), counting=True)

    def progress(outcome):
        board.advance(bar, 1)
        board.note(bar, outcome.summary())

    signal.signal(signal.SIGINT, signal.default_int_handler)
    outcome = run_reprocess(make_reprocess_queue(connection, settings), make_queue(connection, settings),
                            reprocess_answers_key(settings, secrets.token_hex(8)), upload_ids, presets.version, selection,
                            jobs=jobs, on_progress=progress)
    board.finish(bar, outcome.summary())
    if outcome.presets_differ:
        raise click.ClickException(f"the workers run other presets than {presets.source} (version {presets.version}):"
                                   " restart them with the same IMGPIPE_PRESETS, then run this again")
    if outcome.stopped:
        click.echo(f"Stopped after {outcome.done} of {outcome.total}: {outcome.summary()}."
                   " Run the same command again to go on.")
        sys.exit(130)
    click.echo(f"Done: {outcome.summary()}.")
    sys.exit(0 if outcome.ok else 1)


def _utc_timestamp(moment) -> str | None:
    from datetime import timezone

    from imgpipe.uploads import timestamp

    return timestamp(moment.replace(tzinfo=timezone.utc)) if moment else None


def api_option(command):
    """--api / IMGPIPE_API, shared by the commands that talk to a running API."""
    return click.option("--api", "api_url", envvar="IMGPIPE_API", default="http://127.0.0.1:8000",
                        show_default=True, metavar="URL",
                        help="The imgpipe API (or set IMGPIPE_API). IMGPIPE_API_TOKEN (from the environment, else from"
                             " var/credentials.env) is sent as a Bearer token.")(command)


def json_option(command):
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")(command)


def make_api(api_url: str):
    """A client sending IMGPIPE_API_TOKEN, from the environment or else var/credentials.env."""
    from cli.client import Api
    return Api(api_url, token=load_settings(USER_VAR_DIR).api_token)


def print_json(document) -> None:
    click.echo(json.dumps(document, indent=2))


def outcome_line(outcome, urls: bool = False) -> str:
    """One short line a person reads: name, id, status, and where it went (or why it did not);
    the presigned URLs, long and short-lived, only when asked for, one per line below it."""
    from cli.client import VERSIONS

    parts = [Path(outcome.file).name, outcome.id or "-", outcome.status]
    if outcome.error:
        parts.append(f"{outcome.error['code']}: {outcome.error['message']}")
    elif outcome.downloaded:
        parts.append(f"saved in {Path(outcome.downloaded['original']).parent}")
    elif outcome.key:
        parts.append(f"stored as {outcome.key}")
    line = "  ".join(parts)
    if urls and outcome.results:
        line += "".join(f"\n  {version:<11}{outcome.results[version]}" for version in VERSIONS)
    return line


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@api_option
@json_option
@click.option("--no-wait", is_flag=True, help="Return once the files are uploaded, without waiting for processing.")
@click.option("--download", "download_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Save the original and every preset's objects in DIR/<id>/ (original.<ext>, resized.jpg, …).")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 32),
              help="How many files to upload at the same time.")
@click.option("--parts-at-once", default=4, show_default=True, type=click.IntRange(1, 16),
              help="How many parts of a file sent in parts to upload at the same time.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for each file's processing.")
@click.option("--urls", is_flag=True, help="Also print each completed file's presigned URLs, one per line.")
def upload(files: tuple[Path, ...], api_url: str, as_json: bool, no_wait: bool, download_dir: Path | None,
           jobs: int, parts_at_once: int, timeout: float, urls: bool):
    """Upload images straight to object storage and wait for their versions.

    The API is asked for every file's upload URL at once (one batch request for several
    files); each file is PUT to its URL with a progress bar, then its status is polled until
    it is completed or failed. One line per file: name, id, status, and where it was stored
    (or saved, with --download), or the error code and message; the presigned URLs with
    --urls or --json. Exits 0 only when every file completed (with --no-wait: was
    uploaded). A file the API refuses before any upload shows status "rejected".

    A file the API wants in parts (from IMGPIPE_MULTIPART_THRESHOLD_MB on) is sent in parts,
    several at once. What was sent is kept in $XDG_CACHE_HOME/imgpipe (~/.cache/imgpipe): run
    the same command again after an interruption and it resumes, sending only the parts the
    store does not hold.

    Example: imgpipe upload --jobs 4 --download out/ photos/*.jpg
    """
    from cli.client import succeeded, upload_files
    from cli.progress import ProgressBoard

    outcomes = upload_files(make_api(api_url), list(files), progress=ProgressBoard(), wait=not no_wait,
                            timeout=timeout, download_dir=download_dir, jobs=jobs, parts_at_once=parts_at_once)
    if as_json:
        print_json({"uploads": [outcome.to_json() for outcome in outcomes]})
    else:
        for outcome in outcomes:
            click.echo(outcome_line(outcome, urls=urls))
    sys.exit(0 if all(succeeded(outcome, waited=not no_wait) for outcome in outcomes) else 1)


@cli.command()
@click.argument("upload_id", metavar="ID")
@api_option
@json_option
@click.option("--wait", is_flag=True, help="Wait until the upload is completed or failed; exit 1 unless completed.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait with --wait.")
def status(upload_id: str, api_url: str, as_json: bool, wait: bool, timeout: float):
    """Show an upload's status (pending, processing, completed or failed, with its error).

    Exits 0 when the upload exists (with --wait: when it completed).

    Example: imgpipe status 3f2c9e0a4b1d4c6e8f7a9b0c1d2e3f40 --wait
    """
    from cli.client import ClientError

    api = make_api(api_url)
    try:
        body = api.wait(upload_id, timeout) if wait else api.status(upload_id)
    except ClientError as error:
        raise click.ClickException(f"{error.code}: {error.message}") from None
    if as_json:
        print_json(body)
    else:
        error = body["error"]
        click.echo(f"{body['id']}  {body['status']}" + (f"  {error['code']}: {error['message']}" if error else ""))
    sys.exit(1 if wait and body["status"] != "completed" else 0)


@cli.command()
@click.argument("upload_id", metavar="ID")
@api_option
@json_option
@click.option("--download", "download_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Save the original and every preset's objects in DIR/<id>/ (original.<ext>, resized.jpg, …).")
def results(upload_id: str, api_url: str, as_json: bool, download_dir: Path | None):
    """Print the URLs of an upload's original, resized, compressed and thumbnail versions.

    The URLs are presigned and expire (see expires_at). Exits 1 while the upload is not completed.

    Example: imgpipe results 3f2c9e0a4b1d4c6e8f7a9b0c1d2e3f40 --download out/
    """
    from cli.client import VERSIONS, ClientError, download_results

    api = make_api(api_url)
    try:
        body = api.results(upload_id)
        if body["status"] == "completed" and download_dir is not None:
            body["downloaded"] = download_results(body, download_dir)
    except ClientError as error:
        raise click.ClickException(f"{error.code}: {error.message}") from None
    if as_json:
        print_json(body)
    elif body["status"] != "completed":
        click.echo(f"{body['id']}  {body['status']}: no results yet")
    else:
        for version in VERSIONS:
            click.echo(f"{version:<11} {body[version]}")
        click.echo(f"{'expires_at':<11} {body['expires_at']}")
        if download_dir is not None:
            click.echo(f"saved in {Path(body['downloaded']['original']).parent}")
    sys.exit(0 if body["status"] == "completed" else 1)


@cli.command()
@click.option("--ttl", default=900, show_default=True, type=click.IntRange(1, MAX_LIFETIME),
              help="Seconds until the token expires (at most a day).")
@click.option("--files", "max_files", type=click.IntRange(min=1), help="The most uploads it may create in all.")
@click.option("--bytes", "max_bytes", type=click.IntRange(min=1),
              help="The most bytes its uploads may declare in all (each upload must then give its size).")
@click.option("--id", "token_id", metavar="ID", help="Recorded on its uploads (a random one when left out).")
@json_option
def token(ttl: int, max_files: int | None, max_bytes: int | None, token_id: str | None, as_json: bool):
    """Mint a browser upload token, signed with IMGPIPE_UPLOAD_TOKEN_SECRET.

    A page sends it as `Authorization: Bearer <token>`: it may create uploads and read the
    status, results and record of the uploads made with it, nothing else. A web app's backend
    usually mints its own in a few lines (docs/guides/web-apps.md).

    Example: imgpipe token --ttl 600 --files 10 --bytes 50000000
    """
    import secrets

    from imgpipe.upload_tokens import TOKEN_ID, mint

    settings = load_settings()
    if not settings.upload_token_secret:
        raise click.UsageError("set IMGPIPE_UPLOAD_TOKEN_SECRET (the API's own) to mint upload tokens")
    token_id = token_id or secrets.token_hex(8)
    if not TOKEN_ID.match(token_id):
        raise click.BadParameter("1 to 64 letters, digits or any of _ . : -", param_hint="--id")
    expires_at = int(time.time()) + ttl
    minted = mint(settings.upload_token_secret, token_id, expires_at, max_files=max_files, max_bytes=max_bytes)
    if as_json:
        print_json({"token": minted, "id": token_id, "exp": expires_at, "files": max_files, "bytes": max_bytes})
    else:
        click.echo(minted)


@cli.command("delivery-url")
@click.argument("upload_id", metavar="ID")
@click.argument("preset")
@click.option("--ttl", type=click.IntRange(min=1), help="Seconds until the URL expires (left out: it never does).")
@api_option
@json_option
def delivery_url(upload_id: str, preset: str, ttl: int | None, api_url: str, as_json: bool):
    """Mint a delivery URL for one preset of an upload, signed with IMGPIPE_DELIVERY_SECRET
    (from the environment, else from var/credentials.env, which `imgpipe up` fills).

    GET on it answers with a redirect to the preset's object, in the best format the client
    accepts, without any other credential; a page can put it in <img src> and cache it.
    Changing the secret revokes every URL signed with the old one. A web app's backend usually
    mints its own in a few lines (docs/guides/delivery.md).

    Example: imgpipe delivery-url 018f2a6c9e1b4d7fa3c5e8b2d4f6a8c0 thumbnail --ttl 86400
    """
    from imgpipe.delivery_urls import path
    from imgpipe.keys import is_upload_id

    settings = load_settings(USER_VAR_DIR)
    if not settings.delivery_secret:
        raise click.UsageError("set IMGPIPE_DELIVERY_SECRET (the API's own) to mint delivery URLs")
    if not is_upload_id(upload_id):
        raise click.BadParameter("an upload id is 32 hex digits", param_hint="ID")
    if settings.derivative_presets.get(preset) is None:
        raise click.BadParameter(f"no such preset; there are {', '.join(settings.derivative_presets.names)}",
                                 param_hint="PRESET")
    expires_at = int(time.time()) + ttl if ttl else None
    url = api_url.rstrip("/") + path(settings.delivery_secret, upload_id, preset, expires_at)
    if as_json:
        print_json({"url": url, "id": upload_id, "preset": preset, "exp": expires_at})
    else:
        click.echo(url)


@cli.command()
@click.argument("upload_ids", nargs=-1, required=True, metavar="ID...")
@api_option
@json_option
def delete(upload_ids: tuple[str, ...], api_url: str, as_json: bool):
    """Delete uploads: their originals and every derivative, in every format.

    The uploads stay listed with status "deleted", and their results are gone. Deleting one
    again is no error. Prints one line per id; exits 0 only when every one was deleted.

    Example: imgpipe delete 3f2c9e0a4b1d4c6e8f7a9b0c1d2e3f40
    """
    from cli.client import ClientError

    api = make_api(api_url)
    deleted, errors = [], []
    for upload_id in upload_ids:
        try:
            deleted.append(api.delete(upload_id))
        except ClientError as error:
            errors.append({"id": upload_id, "code": error.code, "message": error.message})
    if as_json:
        print_json({"deleted": deleted, "errors": errors})
    else:
        for body in deleted:
            click.echo(f"{body['id']}  {body['status']}")
        for error in errors:
            click.echo(f"{error['id']}  {error['code']}: {error['message']}", err=True)
    sys.exit(1 if errors else 0)


@cli.command()
@api_option
def login(api_url: str):
    """Print a new one-time link that logs a browser in to the upload page and the dashboard.

    The link works once, for a day; the session it starts lasts a week.

    Example: imgpipe login
    """
    import redis

    from api.login import issue_login_code, login_url
    from imgpipe.redis_connection import redis_client

    settings = load_settings(USER_VAR_DIR)
    if not settings.api_token:
        raise click.UsageError("no IMGPIPE_API_TOKEN (in the environment or var/credentials.env): the API"
                               " has no login; start it with `imgpipe up`")
    try:
        code = issue_login_code(redis_client(settings, "cli"))
    except redis.RedisError as error:
        raise click.ClickException(f"cannot reach Redis at {settings.redis_address}: {error}") from None
    click.echo(login_url(api_url, code))


@cli.command(name="ls")
@api_option
@json_option
@click.option("--status", help="Only uploads in this status (pending, processing, completed, failed or deleted);"
                               " without it, every upload but the deleted ones.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100_000),
              help="How many uploads to list, newest first.")
@click.option("--flagged", is_flag=True, help="Only the uploads the moderation model flagged.")
def list_uploads(api_url: str, as_json: bool, status: str | None, limit: int, flagged: bool):
    """List uploads, newest first: id, status, when it was created, file name, and why a failed one failed.

    Example: imgpipe ls --status failed --limit 50
    """
    from cli.client import ClientError

    try:
        found = make_api(api_url).newest(limit, status=status, flagged=flagged)
    except ClientError as error:
        raise click.ClickException(f"{error.code}: {error.message}") from None
    if as_json:
        print_json({"uploads": found})
        return
    for upload in found:
        error = upload["error"]
        click.echo("  ".join([upload["id"], f"{upload['status']:<10}", upload["created_at"], upload["filename"]]
                             + ([error["code"]] if error else [])))


def main():
    cli()


if __name__ == "__main__":
    main()
