"""`make bench`'s results: the targets table and the markdown of results/latest.md."""

from __future__ import annotations

from typing import Any

from benchmarks.harness import COOLDOWN, DELAY, DELAYED, MEMORY_LIMIT, SUPPRESSED, VISITS
from benchmarks.rows import Bench


def target(name: str, value: str, met: bool) -> dict[str, Any]:
    return {"target": name, "value": value, "met": met}


def ratio(name: str, figure: float, reference: float, bound: float | None) -> dict[str, Any]:
    """A ratio of two rows of the run against its bound: at least `bound`, or at most -`bound`
    when negative; no bound: information."""
    value = figure / reference
    met = bound is None or (value >= bound if bound > 0 else value <= -bound)
    return target(name, f"{value:.2f} ×", met)


def at_most(name: str, seconds: float, bound: float, done: bool = True) -> dict[str, Any]:
    return target(name, f"{seconds:.2f} s", seconds <= bound and done)


def targets(
    bench: Bench,
    memory: dict[str, Any],
    visits: dict[str, Any],
    delayed: dict[str, Any],
    forwarded: dict[str, Any],
) -> list[dict[str, Any]]:
    """Issue 24's targets (ratios to rows of the same run), then the earlier ones still held."""
    r = bench.rows
    single, bare = r["gateway"].rps, r["bare"].rps
    batches = r["gateway-batch"].eps
    return [
        ratio("single events ≥ 0.60 × bare ASGI", single, bare, 0.60),
        ratio("a new visitor per request ≥ 0.45 × bare ASGI", r["visitors"].rps, bare, 0.45),
        ratio("batched events/s ≥ 2.5 × bare ASGI req/s", batches, bare, 2.5),
        ratio(
            "single events p99 ≤ 1.5 × bare p99 at 64 connections",
            r["gateway"].p99_ms,
            r["bare"].p99_ms,
            -1.5,
        ),
        ratio(
            "single events with one destination ≥ 0.9 × without", r["destination"].rps, single, 0.9
        ),
        target(
            "forwarder, one process, to a local fake (information)",
            f"{forwarded['eps']:,.0f} events/s",
            True,
        ),
        ratio(
            f"single events, {SUPPRESSED:,} suppressed identifiers ÷ none (information)",
            r["suppressing"].rps,
            single,
            None,
        ),
        ratio("--workers 2 ≥ 1.0 × one worker (information)", r["gateway-2w"].rps, single, 1.0),
        ratio("single events ÷ naive handler (information)", single, r["naive"].rps, None),
        ratio(
            "/api/v1/event/ within noise (≥ 0.95 ×) of /v1/event", r["api-path"].rps, single, 0.95
        ),
        ratio(
            "single events through the cluster client ≥ 0.8 × one node",
            r["cluster"].rps,
            single,
            0.8,
        ),
        ratio(
            "batches through the cluster client ≥ 0.8 × one node",
            r["cluster-batch"].eps,
            batches,
            0.8,
        ),
        target(
            "replicas_to_ack = 1 (information): single, batches ÷ without",
            f"{r['cluster-ack'].rps / r['cluster'].rps:.2f} ×, "
            f"{r['cluster-ack-batch'].eps / r['cluster-batch'].eps:.2f} ×",
            True,
        ),
        target(
            f"Redis memory per active contact ≤ {MEMORY_LIMIT:,} B",
            f"{memory['total_bytes']:,.0f} B",
            memory["total_bytes"] <= MEMORY_LIMIT,
        ),
        at_most(
            f"detector closes {VISITS:,} visits in ≤ 10 s",
            visits["seconds"],
            10,
            visits["triggers"] >= VISITS,
        ),
        at_most("detector lag never above 2 s", visits["max_lag_seconds"], 2),
        at_most(
            f"with a delay and a cooldown: {DELAYED:,} visits closed in ≤ 10 s",
            delayed["closed_seconds"],
            10,
        ),
        at_most(
            f"{DELAYED:,} due delayed triggers re-checked and emitted in ≤ 10 s",
            delayed["seconds"],
            10,
            delayed["emitted"] >= DELAYED,
        ),
        at_most("delayed triggers' lag never above 2 s", delayed["max_lag_seconds"], 2),
    ]


def command_table(bench: Bench) -> list[str]:
    """Calls and µs per event of each Redis command, per gateway row on the single Redis (the
    idle gateways' background work is in every row's figures, far below one call per 1,000
    events)."""
    rows = [
        row
        for name, row in bench.rows.items()
        if name not in ("bare", "floor", "naive") and row.commands
    ]
    if not rows:
        return []
    names = list(dict.fromkeys(name for row in rows for name in row.commands))
    lines = [
        "Redis commands per event (`INFO commandstats` over the measured run; `evalsha` is the "
        "whole ingest.lua call, the other commands are mostly made inside it): calls / µs.",
        "",
        "| command | " + " | ".join(row.what for row in rows) + " |",
        "|---|" + "---:|" * len(rows),
    ]
    for name in names:
        cells = [
            f"{calls:.2f} / {usec:.2f}" if (calls, usec) != (0, 0) else "-"
            for calls, usec in (row.commands.get(name, (0.0, 0.0)) for row in rows)
        ]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return lines


def markdown(
    bench: Bench,
    memory: dict[str, Any],
    visits: dict[str, Any],
    delayed: dict[str, Any],
    checks: list[dict[str, Any]],
    meta: dict[str, Any],
    forwarded: dict[str, Any],
) -> str:
    bare = bench.rows["bare"]
    lines = [
        f"Run {meta['date']} on {meta['cpus']} CPUs ({meta['cpu']}), load average before the run "
        f"{meta['load_before']}; wrk {bench.args.threads} threads, {bench.args.connections} "
        f"connections, {bench.args.duration:g} s per row after {bench.args.warmup:g} s warm-up; "
        f"each figure the median of {bench.args.rounds} alternating rounds (req/s: lowest–highest "
        "in brackets).",
        "",
        "| server | req/s | events/s | p50 ms | p99 ms | req/s × bare | p50 × bare | p99 × bare "
        "| server CPU µs/event | Redis CPU µs/event | stored / answered 200 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in bench.rows.values():
        stored = f"{row.stored:,} / {row.answered_200:,}" if row.answered_200 else "-"
        rps = f"{row.rps:,.0f}"
        if row.rounds > 1:
            rps += f" ({row.rps_low:,.0f}–{row.rps_high:,.0f})"
        lines.append(
            f"| {row.what} | {rps} | {row.eps:,.0f} | {row.p50_ms:.2f} | "
            f"{row.p99_ms:.2f} | {row.rps / bare.rps:.2f} | {row.p50_ms / bare.p50_ms:.2f} | "
            f"{row.p99_ms / bare.p99_ms:.2f} | {row.server_cpu_us:.1f} | {row.redis_cpu_us:.1f} | "
            f"{stored} |"
        )
    lines += ["", *command_table(bench)]
    lines += [
        "",
        f"Redis memory per active contact (cart of 5 products, 20 product views; mean of "
        f"{memory['contacts']} contacts, `MEMORY USAGE`): **{memory['total_bytes']:,.0f} B** = "
        f"contact keys {memory['contact_keys_bytes']:,.0f} B + identifier keys "
        f"{memory['identifier_keys_bytes']:,.0f} B + cart state "
        f"{memory['cart_state_bytes']:,.0f} B "
        "(the raw event stream is capped per tenant, not per contact, and is not counted).",
        "",
        f"Detector (1 worker): {visits['visits']:,} visits with an email, stored (ingest script "
        f"called directly) in "
        f"{visits['store_seconds']:.1f} s, fell due over {visits['due_over_seconds']:.1f} s; all "
        f"closed and {visits['triggers']:,} triggers emitted **{visits['seconds']:.2f} s** after "
        f"the first was due ({visits['after_last_due_seconds']:.2f} s after the last); "
        f"max lag **{visits['max_lag_seconds']:.2f} s**.",
        "",
        f"Delayed triggers (delay_seconds = {DELAY}, cooldown_seconds = {COOLDOWN}): "
        f"{delayed['triggers']:,} visits stored the same way, closed and held "
        f"**{delayed['closed_seconds']:.2f} s** after the first was due; their triggers fell due "
        f"over {delayed['due_over_seconds']:.1f} s and {delayed['emitted']:,} were re-checked and "
        f"emitted **{delayed['seconds']:.2f} s** after the first was due; max lag "
        f"**{delayed['max_lag_seconds']:.2f} s**.",
        "",
        f"Forwarder (1 worker): {forwarded['events']:,} events queued for one destination, "
        f"forwarded one `POST v1/event` each to a local fake answering 200 in "
        f"{forwarded['seconds']:.1f} s: **{forwarded['eps']:,.0f} events/s**.",
        "",
        "| target | this run | met |",
        "|---|---:|:-:|",
    ]
    for check in checks:
        lines.append(
            f"| {check['target']} | {check['value']} | {'yes' if check['met'] else 'no'} |"
        )
    lines.append("")
    return "\n".join(lines)
