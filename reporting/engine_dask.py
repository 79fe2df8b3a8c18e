"""The Dask engine: the slices' work mapped over a Dask cluster (`greenops run --engine dask`).

Workers run the same `process_slice` as the local engine and stage their rows in the ledger's
folder, so the workers must see the ledger's path (a local cluster, or a shared file system).
Without a scheduler address a `distributed.LocalCluster` of worker processes is started for the
run and closed after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reporting.config import Config
from reporting.errors import ReportingError

log = logging.getLogger("reporting")

LOCAL_WORKERS = 2  # one process per core of the machines this runs on nightly


def map_on_dask(
    process: Callable[..., Any], slices: list[Any], config: Config, run_id: str, root: Path,
    scheduler: str | None,
) -> list[Any]:  # fmt: skip
    """`process(slice, config, run_id, root)` for every slice on the cluster, in slice order."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # an optional extra: say how to get it
        raise ReportingError(
            "--engine dask needs Dask's distributed scheduler: pip install 'greenops-reporting[dask]'"
        ) from exc
    if scheduler is None:
        with LocalCluster(n_workers=LOCAL_WORKERS, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
            return _mapped(client, process, slices, config, run_id, root)
    try:
        client = Client(scheduler, timeout="30s")
    except OSError as exc:
        raise ReportingError(
            f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc}); check the address "
            "or leave --scheduler out to start a local cluster"
        ) from exc
    with client:
        return _mapped(client, process, slices, config, run_id, root)


def _mapped(client: Any, process: Callable[..., Any], slices: list[Any], config: Config,
            run_id: str, root: Path) -> list[Any]:  # fmt: skip
    log.info("dask: %s slices on %s workers", len(slices), len(client.scheduler_info()["workers"]))
    futures = client.map(process, slices, config=config, run_id=run_id, root=root, pure=False)
    return client.gather(futures)
