"""What the Temporal dev server did, counted by the server itself: the operations
bench/temporal_bench.py reports per run, read from the Prometheus metrics that
`temporal server start-dev --metrics-port` serves (launcher/stack.py `metrics_port`).

They show how each kind of run reaches its activities. A worker that has a free activity slot
when a workflow task completes can be handed the activities that task scheduled in the reply
(eager dispatch): no task is queued in the matching service, polled for or recorded as
started in a write of its own. While its slots are busy, each activity takes that longer way,
which costs the server more CPU. A no-op's activities return at once and leave slots free; a
real appeal's occupy them, so under full load most of its activities are queued, where most of
the no-op's go eagerly; even a single run on an idle worker was once seen queued. The matching
service counts a task again when it forwards it between a queue's partitions, so a queued
activity can count more than once.
"""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

# The label printed, then the metric, the service that counts it (None: all of them) and the
# operation, in the bench's namespace.
SERVER_WORK = {
    "activity tasks queued": ("service_requests", "matching", "AddActivityTask"),
    "activity polls": ("service_requests", "frontend", "PollActivityTaskQueue"),
    "workflow task polls": ("service_requests", "frontend", "PollWorkflowTaskQueue"),
    "state writes": ("persistence_requests", None, "UpdateWorkflowExecution"),
}
NAMESPACE = "default"
# The server publishes its counters about once a second: a read taken this long after the
# last run of a batch includes all of that batch's work.
PUBLISH_SECONDS = 1.5


def server_work(metrics_url: str) -> dict[str, float]:
    """The SERVER_WORK counters so far."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    totals = dict.fromkeys(SERVER_WORK, 0.0)
    for family in text_string_to_metric_families(_families_read(text)):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("namespace") != NAMESPACE:
                continue
            for label, (name, service, operation) in SERVER_WORK.items():
                if (
                    family.name == name  # the parser names a counter's samples `{name}_total`
                    and labels.get("operation") == operation
                    and service in (None, labels.get("service_name"))
                ):
                    totals[label] += sample.value
    return totals


_READ = {name for name, _, _ in SERVER_WORK.values()}


def _families_read(text: str) -> str:
    """The lines of the families SERVER_WORK reads: the parser, in Python, would otherwise go
    through every series the server has (most of the bench process's time between batches)."""
    kept = []
    for line in text.splitlines():
        if line.startswith("#"):
            words = line.split(maxsplit=3)  # "# TYPE name counter", "# HELP name ..."
            name = words[2] if len(words) > 2 else ""
        else:
            name = line.split("{", 1)[0].split(" ", 1)[0]
        if name.removesuffix("_total") in _READ:
            kept.append(line)
    return "\n".join(kept) + "\n"
