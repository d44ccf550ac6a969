"""Cluster tests: imgpipe on simulated hosts (network namespaces) made and removed by each test.

They need root (network namespaces, veths, a bridge). The test itself runs on the `client`
host while a cluster is up, so every address it uses is one of the cluster's own.
"""

from __future__ import annotations

import itertools
import os
import signal

import pytest

from cluster_stack import HOSTS, Cluster, remove_leftover_folders
from netns import Network, remove_leftovers, run_prefix

_networks = itertools.count()


def _interrupted(signum, _frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@pytest.fixture
def cluster(tmp_path):
    """A running cluster; every process and namespace is removed afterwards, whatever happened.
    SIGTERM is turned into an interruption meanwhile, so a stopped test run cleans up too."""
    if os.geteuid() != 0:
        pytest.skip("cluster tests make network namespaces, which needs root")
    remove_leftovers()
    remove_leftover_folders()
    previous_handler = signal.signal(signal.SIGTERM, _interrupted)
    network = Network(run_prefix(next(_networks)), HOSTS)
    try:
        network.create()
        running = Cluster(network, tmp_path / "cluster")
        try:
            with network.entered("client"):
                running.start()
                yield running
        finally:
            running.stop()
    finally:
        network.remove()
        signal.signal(signal.SIGTERM, previous_handler)
