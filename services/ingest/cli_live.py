"""`tiercel ingest` (the per-host worker) and `tiercel capture` (live events to a file)."""

from __future__ import annotations

from typing import Annotated

import typer

from tiercel.cli.common import ConfigOpt, NatsUrlOpt, OverrideOpt, fail, load_config

DriverOpt = Annotated[str | None, typer.Option("--driver", help="audit | proc_connector | none "
                                               "(default: ingest.driver).")]
EventTypesOpt = Annotated[str | None, typer.Option(
    "--event-types", help="Comma-separated event types the rules need (default: every translated syscall).")]


def _types(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def ingest(config: ConfigOpt = None, option: OverrideOpt = None, nats_url: NatsUrlOpt = None,
           driver: DriverOpt = None, event_types: EventTypesOpt = None,
           publish: Annotated[str, typer.Option(help="jetstream (acked, counted failures) | core.")] = "jetstream",
           ) -> None:
    """Per-host worker: live kernel events and the k8s audit webhook onto the bus, every drop counted."""
    from tiercel.common.log import setup
    from tiercel.common.runtime import run
    from tiercel.ingest.worker import IngestWorker

    opts = list(option or [])
    if driver:
        opts.append(f"ingest.driver={driver}")
    cfg = load_config(config, opts, nats_url)
    if publish not in ("jetstream", "core"):
        fail("--publish must be jetstream or core")
    setup(cfg["log_level"], "ingest")
    worker = IngestWorker(cfg, _types(event_types), publish_mode=publish)
    raise typer.Exit(run(worker.run, "ingest"))


def capture(write: Annotated[str, typer.Option("-w", "--write", help="Output file.")],
            fmt: Annotated[str, typer.Option("--format", help="tcap | scap.")] = "scap",
            duration: Annotated[float, typer.Option("--duration", help="Seconds to record (0: until Ctrl-C).")] = 0.0,
            config: ConfigOpt = None, option: OverrideOpt = None, driver: DriverOpt = None,
            event_types: EventTypesOpt = None) -> None:
    """Record live kernel events to a capture file (Tiercel format or .scap)."""
    from tiercel.common.log import setup
    from tiercel.common.runtime import run
    from tiercel.ingest.capture_live import LiveCapture

    opts = list(option or [])
    if driver:
        opts.append(f"ingest.driver={driver}")
    cfg = load_config(config, opts)
    if fmt not in ("tcap", "scap"):
        fail("--format must be tcap or scap")
    setup(cfg["log_level"], "capture")
    cap = LiveCapture(cfg, write, fmt, duration, _types(event_types))
    raise typer.Exit(run(cap.run, "capture"))


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("capture")(capture)
