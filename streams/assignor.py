"""Partition assignment for the stream workers: every partition of a topic goes to
one worker.

A read model applies a log's events in the log's order (its tracking records one
position per log, and projections read rows other aggregates' events wrote), but
the relay spreads a log over partitions by aggregate. Only a worker that holds all
of a topic's partitions can put the log back in order, so the unit of work shared
out is the topic (one log), not the partition. faust's own assignor gives partition
N of every co-partitioned topic to the same worker, which would split every log;
this one balances whole topics over the workers, keeping a topic where it was
while that keeps the balance (fewer moves on a rebalance). See
docs/adr/0010-kafka-workers.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from faust.assignor import PartitionAssignor
from faust.assignor.client_assignment import ClientAssignment


class WholeTopicAssignor(PartitionAssignor):
    def _perform_assignment(self, cluster: Any, member_metadata: Mapping[str, Any]) -> Any:
        clients = {m: self._get_client_metadata(md) for m, md in member_metadata.items()}
        subscriptions = {m: set(md.subscription) for m, md in member_metadata.items()}
        self._update_member_urls(clients)
        topics = sorted(
            t for t in set().union(*subscriptions.values()) if cluster.partitions_for_topic(t)
        )
        owned = assign_topics(
            topics,
            subscriptions,
            previous={m: set(c.assignment.actives) for m, c in clients.items()},
        )
        assignments = {
            member: ClientAssignment(
                actives={t: sorted(cluster.partitions_for_topic(t)) for t in owned[member]},
                standbys={},
            )
            for member in member_metadata
        }
        return self._protocol_assignments(
            assignments,
            self._get_changelog_distribution(assignments),
            self._get_external_topic_distribution(assignments),
            {topic: n for n, topic in enumerate(topics)},
        )


def assign_topics(
    topics: list[str], subscriptions: Mapping[str, set[str]], previous: Mapping[str, set[str]]
) -> dict[str, list[str]]:
    """Topic -> one subscribed member; no member gets more than its share (rounded
    up); a member keeps what it had while it is within its share."""
    owned: dict[str, list[str]] = {m: [] for m in subscriptions}
    share = math.ceil(len(topics) / max(1, len(subscriptions)))
    for topic in topics:
        candidates = sorted(m for m in subscriptions if topic in subscriptions[m])
        if not candidates:
            continue
        keeping = [m for m in candidates if topic in previous.get(m, ()) and len(owned[m]) < share]
        owner = keeping[0] if keeping else min(candidates, key=lambda m: (len(owned[m]), m))
        owned[owner].append(topic)
    return owned
