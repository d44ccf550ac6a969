"""imgpipe across hosts: MinIO distributed over four nodes, the API on two hosts, workers on
two, one Redis and PostgreSQL, with hosts killed, cut off and brought back mid-burst.

Each test starts its own cluster (see conftest.py) and ends by checking every upload: final
state, original, and derivatives present once and showing the same picture."""

from __future__ import annotations

import time
from collections import Counter

from cluster_stack import MINIO_HOSTS
from cluster_client import ClusterClient, StatusLog, check_outputs
from pipeline_client import make_jpegs


def test_uploads_spread_over_all_four_minio_nodes_all_complete(cluster, tmp_path):
    client = ClusterClient(cluster)
    files = make_jpegs(tmp_path / "in", 200)
    started = time.monotonic()
    with StatusLog(cluster) as statuses:
        sent = client.send(files)
        statuses.wait_final([upload.id for upload in sent], timeout=120)
    print(f"200 uploads final in {time.monotonic() - started:.1f} s")

    assert Counter(upload.node for upload in sent) == {node: 50 for node in MINIO_HOSTS}
    assert Counter(upload.api_host for upload in sent) == {"api1": 100, "api2": 100}
    assert not statuses.moved_back()
    check_outputs(cluster, client, sent, read_from=list(MINIO_HOSTS))
