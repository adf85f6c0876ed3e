"""`gateway serve`: start the embedded Redis when no REDIS_URL is set, then uvicorn.
`gateway secret`: print a fresh webhook secret."""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from gateway import __version__
from gateway.app import check_paths
from gateway.embedded import EMBEDDED_ENV, start_embedded
from gateway.embedded.datadir import DataDirInUse
from gateway.embedded.server import EmbeddedRedisError
from gateway.redaction import redacted
from gateway.redis.connection import BadRedisUrl, parse_cluster
from gateway.redis.keys import TenantKeys
from gateway.redis.migrate import migrate_redis
from gateway.settings import ConfigError, Settings, load_settings
from gateway.shared_values import server_directory
from gateway.signing import new_secret
from gateway.supervision import SUPERVISOR_ENV

log = logging.getLogger("gateway")
MAX_WORKERS = 64
# uvicorn adds `color_message`, a copy of the message with terminal colours.
STANDARD_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in STANDARD_RECORD_FIELDS and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(level: str) -> dict[str, Any]:
    """JSON lines on stderr at `level`: for this process, and through uvicorn for every worker
    of --workers N (spawned processes, which would otherwise log in plain text or not at all)."""
    quieter = max(logging.WARNING, logging.getLevelName(level.upper()))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "gateway.cli.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        # httpx logs every request's full URL at INFO ("HTTP Request: POST ..."): for webhooks
        # that is one line per delivery attempt, with any credentials or token of the URL.
        "loggers": {name: {"level": quieter} for name in ("httpx", "httpcore")},
    }


def setup_logging(level: str) -> None:
    logging.config.dictConfig(logging_config(level))


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="gateway",
        description="Recommendation-event tracking gateway: eSputnik/Yespo-style v1/event and "
        "v1/orders ingest on Redis, with abandoned-cart and browse triggers.",
    )
    main.add_argument("--version", action="version", version=f"gateway {__version__}")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the HTTP gateway",
        description="Run the HTTP gateway. Without REDIS_URL an embedded Redis is started with its "
        "data under GATEWAY_DATA_DIR (default ./.gateway-data). Without --config/GATEWAY_CONFIG "
        "one tenant 'default' is served with generated keys, printed at start-up.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8080, help="port to listen on")
    serve.add_argument("--workers", type=_workers, default=1, help="worker processes (1-64)")
    serve.add_argument("--config", default=None, help="TOML config file (or GATEWAY_CONFIG)")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity",
    )
    commands.add_parser(
        "secret",
        help="print a fresh webhook secret",
        description="Print a fresh random webhook secret, whsec_ and the base64 of 32 random "
        "bytes, for a [[tenants.webhooks]] secret. It suits either scheme; a webhook with "
        'signature = "standard" (Standard Webhooks) needs a secret of this form. Give the same '
        "secret to the webhook's receiver.",
    )
    migrate = commands.add_parser(
        "migrate",
        help="move data of earlier key layouts into the current one",
        description="Move every key of the earlier layout "
        f"({TenantKeys.legacy('<tenant>').prefix}:...) to the current one "
        f"({TenantKeys.for_tenant('<tenant>').prefix}:..., one Redis Cluster slot per tenant), "
        "and fold each contact's identifiers and open visit kept in hashes of their own into "
        "the contact's hash, "
        "on REDIS_URL or the embedded "
        "Redis under GATEWAY_DATA_DIR. Stop every gateway first. Safe to run again, and to "
        "resume after an interruption.",
    )
    migrate.add_argument("--config", default=None, help="TOML config file (or GATEWAY_CONFIG)")
    migrate.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return main


def announce_keys(settings: Settings) -> None:
    tenant = settings.tenants[0]
    print(
        "\n  No config file: serving one tenant 'default' with these keys "
        f"(kept in {settings.data_dir / 'keys.json'}):\n"
        f"    server key (back-ends, apps; Authorization header): {tenant.server_keys[0]}\n"
        f"    site key   (browsers; ?key= or header, events only): {tenant.site_keys[0]}\n",
        file=sys.stderr,
        flush=True,
    )


def checked_settings(config: str | None) -> Settings | None:
    """The settings, REDIS_URL and paths checked too; None once the problem is printed (exit 2)."""
    try:
        settings = load_settings(config)
        check_paths(settings)
        if settings.redis_url is not None:
            parse_cluster(settings.redis_url)
    except (ConfigError, BadRedisUrl) as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return None
    return settings


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = checked_settings(args.config)
    if settings is None:
        return 2
    if args.config:
        os.environ["GATEWAY_CONFIG"] = str(settings.config_path)
    log.info(
        "configuration loaded",
        extra={
            "tenants": [t.id for t in settings.tenants],
            "config": str(settings.config_path) if settings.config_path else None,
        },
    )
    embedded = None
    if settings.redis_url is None:
        try:
            embedded = start_embedded(settings.data_dir)
        except (DataDirInUse, EmbeddedRedisError):
            return 1  # logged by start_embedded
        os.environ.update({"REDIS_URL": embedded.url, EMBEDDED_ENV: "1"})
    else:
        log.info("using external redis", extra={"url": redacted(settings.redis_url)})
    if settings.generated_keys:
        announce_keys(settings)
    log.info("listening", extra={"url": f"http://{args.host}:{args.port}", "workers": args.workers})
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down; exiting through SystemExit lets the
    # embedded Redis below be stopped (and saved) and the process end with status 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    if args.workers > 1:
        os.environ[SUPERVISOR_ENV] = str(os.getpid())  # workers end if this process is killed
    try:
        with server_directory():  # the workers' shared metrics
            uvicorn.run(**uvicorn_options(args))
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def migrate(args: argparse.Namespace) -> int:
    settings = checked_settings(args.config)
    if settings is None:
        return 2
    embedded = None
    url = settings.redis_url
    if url is None:
        try:
            embedded = start_embedded(settings.data_dir)
        except (DataDirInUse, EmbeddedRedisError):
            return 1  # logged by start_embedded
        url = embedded.url

    try:
        counts = asyncio.run(migrate_redis(url))
    finally:
        if embedded is not None:
            embedded.stop()
    print("\n".join(counts.report()))
    return 0


def uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """What `serve` hands to uvicorn.run (uvicorn.Config's arguments)."""
    from gateway.ingest.protocol import (
        IngestProtocol,  # imports uvicorn, as serve does: not for --help
    )

    return {
        "app": "gateway.app:create_app",
        "factory": True,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "loop": "uvloop",
        # httptools, with the ingest paths answered past uvicorn's ASGI layer (ingest/protocol.py).
        # The class, not its import string: older uvicorn (0.29 among them) takes only its own
        # names.
        "http": IngestProtocol,
        # Nothing here speaks WebSocket: uvicorn then never imports its websockets protocols,
        # and an upgrade request gets an ordinary HTTP answer.
        "ws": "none",
        "lifespan": "on",
        # uvicorn's access log would print query strings, and site keys travel in ?key=.
        "access_log": False,
        # Nothing here reads the client's address or scheme, so uvicorn's X-Forwarded-*
        # middleware would only add a layer and a header scan to every request.
        "proxy_headers": False,
        # No "server: uvicorn" on every answer: it tells only an attacker what runs here.
        "server_header": False,
        "log_config": logging_config(args.log_level),
        "timeout_graceful_shutdown": 10,
    }


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _port(text: str) -> int:
    # argparse's int alone took 99999, which the socket layer wrapped to 34463 (99999 mod 65536)
    port = _positive(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (1-65535)")
    return port


def _workers(text: str) -> int:
    # Each worker is a process of its own: --workers 100000 forked until the OOM killer came.
    workers = _positive(text)
    if workers > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{text} is more than {MAX_WORKERS} worker processes")
    return workers


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "secret":
        print(new_secret())  # stdout alone, so `gateway secret > file` keeps nothing else
        return 0
    setup_logging(args.log_level)
    if args.command == "serve":
        return serve(args)
    if args.command == "migrate":
        return migrate(args)
    return 2  # unreachable: argparse requires a command
