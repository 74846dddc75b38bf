"""Operational endpoints: liveness (/healthz), readiness (/readyz) and Prometheus metrics (/metrics).

/healthz answers as long as the process can answer at all, touching nothing: a supervisor restarts
the process when it fails. /readyz checks what serving and polling need (store, index, scheduler,
fresh polls, optional features in use) and answers 503 with the failing check's reason when one fails.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request

from aggregator.features import feature_status
from index.indexer import Indexer, IndexLocation

from .serialize import iso
from .services import Services, services_of

log = logging.getLogger("newsdesk.ops")

ops = Blueprint("ops", __name__)

#: The poll job's next run may lag this long behind the clock before the scheduler counts as stuck.
SCHEDULER_GRACE_SECONDS = 60.0


@ops.get("/healthz")
def healthz() -> Any:
    services = services_of(current_app)
    uptime = (datetime.now(UTC) - services.started_at).total_seconds()
    return jsonify(status="ok", uptime_seconds=round(uptime, 3))


@ops.get("/readyz")
def readyz() -> Any:
    report = readiness(services_of(current_app), datetime.now(UTC))
    return jsonify(report), 200 if report["status"] == "ok" else 503


@ops.get("/metrics")
def metrics() -> Any:
    services = services_of(current_app)
    allow = services.config.server.metrics_allow
    if not allow:
        abort(404)  # turned off: as if there were no such page
    from .metrics import client_addresses, metrics_allowed

    if not metrics_allowed(client_addresses(request.remote_addr, request.headers), allow):
        abort(403, "metrics are only served to the addresses in server.metrics_allow")
    body, content_type = services.metrics.exposition(request.headers.get("Accept", ""))
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


def readiness(services: Services, now: datetime) -> dict[str, Any]:
    """Return the readiness report: overall status, the old health fields, and one entry per check."""
    checks: dict[str, dict[str, Any]] = {}
    for name, check in (
        ("store", _check_store),
        ("index", _check_index),
        ("scheduler", _check_scheduler),
        ("replica", _check_replica),
        ("polling", _check_polling),
        ("features", _check_features),
    ):
        started = time.perf_counter()
        try:
            result = check(services, now)
        except Exception as exc:  # a readiness probe reports a failure, it never raises one
            log.warning("readiness: the %s check failed: %s: %s", name, type(exc).__name__, exc)
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        if result is None:
            continue  # not applicable in this process
        result["seconds"] = round(time.perf_counter() - started, 4)
        checks[name] = result
    ready = all(c["ok"] for c in checks.values())
    return {
        "status": "ok" if ready else "error",
        # Kept from the former /healthz, so existing probes reading them go on working.
        "entries": checks["store"].get("entries"),
        "index": "ready" if checks["index"].get("ok") else "empty",
        "checks": checks,
    }


def _check_store(services: Services, now: datetime) -> dict[str, Any]:
    return {"ok": True, "entries": services.store.count_entries()}


def _check_index(services: Services, now: datetime) -> dict[str, Any]:
    root = services.config.index_dir
    if services.follower is not None:  # a web follower: its position and lag are the replica check's
        if IndexLocation(root).current_dir() is None or services.index_reader.searcher() is None:
            return {"ok": False, "error": f"the replica in {root} is being built from the store's change log"}
        return {
            "ok": True,
            "related_postings": services.related.postings_in_memory(),
            "past_stories": services.stories.past_in_memory(),
        }
    if not root.is_dir():
        return {"ok": False, "error": f"the index directory {root} is missing; `newsdesk reindex` rebuilds it"}
    if IndexLocation(root).current_dir() is None or services.index_reader.searcher() is None:
        return {"ok": False, "error": f"no live index in {root}; `newsdesk index` or `newsdesk run` creates it"}
    seq = Indexer(root, services.store).indexed_seq()
    pending, oldest = services.store.pending_changes(seq)
    lag = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    return {
        "ok": True,
        "seq": seq,
        "lag_changes": pending,
        "lag_seconds": round(lag, 3),
        # Informational: answers are right while postings are read, only slower for articles asked about first.
        "related_postings": services.related.postings_in_memory(),
        # Informational too: the past weeks' stories lookups of older articles read (`warm_past`).
        "past_stories": services.stories.past_in_memory(),
    }


def _check_scheduler(services: Services, now: datetime) -> dict[str, Any] | None:
    scheduler = services.scheduler
    if scheduler is None:
        return None  # this process does not poll (`newsdesk serve`)
    from aggregator.scheduler import JOB_ID

    job = scheduler.get_job(JOB_ID) if scheduler.running else None
    if job is None or job.next_run_time is None:
        return {"ok": False, "running": bool(scheduler.running), "error": "the polling scheduler is not running"}
    # A live scheduler keeps moving the job's next run forward (even past runs it skips while a long
    # poll is still going); one lagging far behind the clock means its thread is stuck or gone.
    interval = getattr(job.trigger, "interval", None)
    grace = max(SCHEDULER_GRACE_SECONDS, 3 * interval.total_seconds()) if interval else SCHEDULER_GRACE_SECONDS
    behind = (now - job.next_run_time).total_seconds()
    result: dict[str, Any] = {"ok": behind <= grace, "running": True, "next_run_at": iso(job.next_run_time)}
    if behind > grace:
        result["error"] = f"the poll job is {behind:.0f} s behind its schedule"
    return result


def _check_replica(services: Services, now: datetime) -> dict[str, Any] | None:
    follower = services.follower
    if follower is None:
        return None  # no replica of its own: `run` indexes, plain `serve` reads what `run` wrote
    status: dict[str, Any] = follower.status(now)
    limit = float(services.config.node.max_replica_lag)
    status["max_lag_seconds"] = limit
    status["ok"] = not status["replaying"] and status["lag_seconds"] <= limit
    if status["replaying"]:
        status["error"] = f"the replica is replaying the change log ({status['lag_changes']} changes to go)"
    elif not status["ok"]:
        status["error"] = (
            f"the replica is {status['lag_seconds']:.0f} s behind the store ({status['lag_changes']} changes; "
            f"node.max_replica_lag is {limit:g} s)"
        )
    return status


def _check_polling(services: Services, now: datetime) -> dict[str, Any]:
    store = services.store
    staleness = float(services.config.server.ready_poll_staleness)
    oldest_due = store.oldest_due_at(now)
    # Lateness counts from this process's start at the earliest: after a restart, feeds that fell due
    # while it was down are being caught up, not forgotten.
    late = max(0.0, (now - max(oldest_due, services.started_at)).total_seconds()) if oldest_due else 0.0
    result: dict[str, Any] = {
        "ok": staleness <= 0 or late <= staleness,
        "last_check_at": iso(store.last_check_at()),
        "oldest_due_at": iso(oldest_due),
        "late_seconds": round(late, 3),
        "staleness_seconds": staleness,
    }
    if not result["ok"]:
        result["error"] = (
            f"a feed has been due for {late:.0f} s without a check (server.ready_poll_staleness is {staleness:g} s): "
            "polling is stopped or cannot keep up"
        )
    return result


def _check_features(services: Services, now: datetime) -> dict[str, Any]:
    used = {"full_content": any(f.full_content and f.enabled for f in services.config.feeds)}
    features = {
        name: {"available": reason is None, "used": used.get(name, False), "reason": reason}
        for name, reason in feature_status().items()
    }
    # A missing optional feature nobody uses is worth reporting, not worth taking the service out.
    missing = [name for name, f in features.items() if f["used"] and not f["available"]]
    result: dict[str, Any] = {"ok": not missing, "features": features}
    if missing:
        result["error"] = "; ".join(f"{name}: {features[name]['reason']}" for name in missing)
    return result
