"""GET /metrics: the pipeline's state in Prometheus' text format, read fresh at every scrape.

Everything comes from the shared stores (the uploads table, the RQ queue, Redis counters),
not from per-process counters, so every gunicorn worker answers the same numbers.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from imgpipe import uploads
from imgpipe.queues import make_queue, make_reprocess_queue, make_webhook_queue, relayed_count_key

bp = Blueprint("metrics", __name__)

# Seconds from claim to completion: most images take well under a second; the job times out at 120 s.
PROCESSING_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# The classic text format, which every Prometheus version reads; our names need none of 1.0.0's escaping.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PipelineCollector:
    def __init__(self, services):
        self.services = services

    def collect(self):
        yield self.uploads_by_status()
        yield self.stored_bytes()
        yield self.flagged_uploads()
        yield self.processing_seconds()
        yield from self.redis_metrics()

    def uploads_by_status(self) -> GaugeMetricFamily:
        counts = uploads.count_by_status(self.services.db)
        family = GaugeMetricFamily("imgpipe_uploads", "Uploads by status.", labels=["status"])
        for status, count in counts.items():
            family.add_metric([status], count)
        return family

    def stored_bytes(self) -> GaugeMetricFamily:
        """What completed uploads keep in the bucket: their originals and their derivatives."""
        originals, derivatives = uploads.stored_bytes(self.services.db)
        family = GaugeMetricFamily("imgpipe_stored_bytes", "Bytes in the bucket for completed uploads.",
                                   labels=["kind"])
        family.add_metric(["original"], originals)
        family.add_metric(["derivatives"], derivatives)
        return family

    def flagged_uploads(self) -> GaugeMetricFamily:
        """Uploads the moderation model flagged: kept (completed) in flag mode, failed in reject mode."""
        counts = dict.fromkeys((uploads.COMPLETED, uploads.FAILED), 0)
        counts.update(uploads.flagged_counts(self.services.db))
        family = GaugeMetricFamily("imgpipe_uploads_flagged", "Uploads the moderation model flagged, by status.",
                                   labels=["status"])
        for status, count in counts.items():
            family.add_metric([status], count)
        return family

    def processing_seconds(self) -> HistogramMetricFamily:
        """Completed uploads' time from being claimed by a worker to being marked completed."""
        total, seconds_sum, cumulative = uploads.processing_seconds(self.services.db, PROCESSING_BUCKETS)
        buckets = [(str(bound), count) for bound, count in zip(PROCESSING_BUCKETS, cumulative)]
        buckets.append(("+Inf", total))
        return HistogramMetricFamily("imgpipe_processing_seconds",
                                     "Seconds from a worker claiming an upload to its completion.",
                                     buckets=buckets, sum_value=seconds_sum)

    def redis_metrics(self):
        svc = self.services
        depth = GaugeMetricFamily("imgpipe_queue_depth", "Jobs waiting in the RQ queue.", labels=["queue"])
        for queue in (make_queue(svc.redis, svc.settings), make_webhook_queue(svc.redis, svc.settings),
                      make_reprocess_queue(svc.redis, svc.settings)):
            depth.add_metric([queue.name], queue.count)
        yield depth
        waiting = GaugeMetricFamily("imgpipe_events_waiting", "MinIO events not yet taken by the relay.")
        waiting.add_metric([], svc.redis.llen(svc.settings.events_key))
        yield waiting
        relayed = CounterMetricFamily("imgpipe_events_relayed", "MinIO events the relay took off their list and handled.")
        relayed.add_metric([], int(svc.redis.get(relayed_count_key(svc.settings)) or 0))
        yield relayed


@bp.get("/metrics", strict_slashes=False)
def metrics():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(current_app.extensions["imgpipe"]))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE)
