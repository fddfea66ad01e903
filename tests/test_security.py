"""Nothing listens beyond loopback by default."""

from __future__ import annotations

import ipaddress
import os

import psutil
import pytest

from xfacies.app.config import ClusterConfig


def _listening(pids: set[int]) -> list[tuple[int, str, int]]:
    return [(c.pid, c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids]


def test_a_runs_local_cluster_and_its_dashboard_listen_on_loopback_only():
    """The default [cluster] of a run: the scheduler, the dashboard and the workers (every
    listening socket of this process and of its children) are bound to loopback addresses."""
    pytest.importorskip("distributed")
    from xfacies.app.pipeline import _scheduler

    me = psutil.Process(os.getpid())
    before = set(_listening({me.pid}))
    cfg = ClusterConfig(n_workers=1, dashboard_address=ClusterConfig().dashboard_address.rsplit(":", 1)[0] + ":0")
    assert ClusterConfig().dashboard_address.startswith("127.0.0.1:")
    with _scheduler(cfg, verbose=False) as (client, link):
        assert link and link.startswith("http://127.0.0.1:")
        pids = {me.pid} | {c.pid for c in me.children(recursive=True)}
        sockets = [s for s in _listening(pids) if s not in before]
    assert len(sockets) >= 3, sockets  # scheduler, dashboard, worker (and its nanny)
    open_to_network = [s for s in sockets if not ipaddress.ip_address(s[1]).is_loopback]
    assert not open_to_network, open_to_network
