"""Run a sweep's trainings on Dask: an existing cluster (``tcp://HOST:8786``) or a ``LocalCluster``
on this machine (``local:N``).

Workers need nothing but the package: each task trains one configuration and returns its record;
the driver (the process that called :func:`run_on_dask`) writes every record into its own cache,
so no filesystem is shared. A worker that dies loses only the run it was training: Dask's
scheduler gives that run to another worker (up to its ``distributed.scheduler.allowed-failures``,
then the run counts as failed). Ctrl-C cancels what is still running; what finished is kept.
"""

from __future__ import annotations

import logging
import re
import signal
from collections.abc import Callable, Sequence

from adcforge.errors import AdcforgeError

LOCAL_RE = re.compile(r"^local:(\d+)$")


class ClusterError(AdcforgeError):
    """The Dask scheduler cannot be reached or the cluster description is malformed."""


def parse_cluster(text: str) -> int:
    """Return the worker count of ``local:N``; a :class:`ClusterError` for anything else."""
    m = LOCAL_RE.match(text or "")
    if not m or int(m.group(1)) < 1:
        raise ClusterError(f"--cluster {text!r}: expected local:N with N >= 1 worker processes "
                           f"(or --scheduler tcp://HOST:PORT for an existing cluster)")
    return int(m.group(1))


def connect(scheduler: str | None = None, cluster: str | None = None, timeout: float = 10.0):
    """Return ``(client, closer)`` for an existing scheduler or a new ``LocalCluster``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError("Dask is not installed: `pip install 'dask[distributed]'`") from None
    if (scheduler is None) == (cluster is None):
        raise ClusterError("give one of --scheduler tcp://HOST:PORT or --cluster local:N")
    if cluster is not None:
        n = parse_cluster(cluster)
        # The workers start with Ctrl-C ignored (Python keeps an inherited SIG_IGN): Ctrl-C is
        # the driver's to handle, which cancels the runs and closes the cluster cleanly.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                 dashboard_address=None, silence_logs=logging.ERROR)
        finally:
            signal.signal(signal.SIGINT, previous)
        client = Client(local)

        def close():
            client.close()
            local.close()

        return client, close
    if not re.match(r"^(tcp|tls|inproc|ucx)://", scheduler):
        raise ClusterError(f"--scheduler {scheduler!r}: expected an address such as "
                           f"tcp://HOST:8786")
    try:
        client = Client(scheduler, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} within "
                           f"{timeout:g} s ({type(exc).__name__}); is `dask scheduler` running "
                           f"there and the port open?") from None
    return client, client.close


def check_workers(client) -> None:
    """Raise a one-line :class:`ClusterError` unless every worker has this version of adcforge
    (a worker without it would fail every run it is given)."""
    from adcforge import __version__

    def probe():  # defined here so that it travels by value: the worker may lack the package
        try:
            import adcforge
            import learn  # noqa: F401
        except ImportError as exc:
            return f"missing ({exc.name})"
        return adcforge.__version__

    try:
        versions = client.run(probe)
    except Exception as exc:  # noqa: BLE001  (any failure to reach the workers)
        raise ClusterError(f"cannot ask the Dask workers what they run ({exc})") from None
    if not versions:
        raise ClusterError("the Dask cluster has no workers: start some with "
                           "`dask worker tcp://HOST:8786 --nthreads 1`")
    bad = {w: v for w, v in versions.items() if v != __version__}
    if bad:
        worker, version = next(iter(sorted(bad.items())))
        raise ClusterError(f"Dask worker {worker} has adcforge {version}, not {__version__} "
                           f"({len(bad)} of {len(versions)} workers): install this version "
                           f"there (`pip install -e .` in the same checkout)")


def run_on_dask(fn: Callable, tasks: Sequence[tuple], *, scheduler: str | None = None,
                cluster: str | None = None, on_result: Callable[[int, object], None],
                on_progress: Callable[[int, int, int], None] | None = None) -> list[int]:
    """Run ``fn(*tasks[i])`` for every ``i`` on Dask; return the indices that failed.

    ``on_result(i, result)`` runs in this process as each task finishes (the place to write the
    cache); ``on_progress(done, running, failed)`` after each. Longest first is the caller's
    order: tasks are submitted as given.
    """
    from distributed import as_completed

    client, close = connect(scheduler, cluster)
    futures = {}
    failed: list[int] = []
    done = 0
    try:
        check_workers(client)
        for i, args in enumerate(tasks):
            futures[client.submit(fn, *args, pure=False, key=f"adcforge-run-{i}")] = i
        for fut in as_completed(list(futures)):
            i = futures[fut]
            if fut.status == "finished":
                on_result(i, fut.result())
                done += 1
            else:
                failed.append(i)
            if on_progress:
                running = sum(len(v) for v in client.processing().values())
                on_progress(done, running, len(failed))
    except KeyboardInterrupt:
        client.cancel(list(futures))
        raise
    finally:
        close()
    return failed
