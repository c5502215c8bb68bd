"""Run the batch's scoring on a Dask distributed cluster (``qa-audio batch --scheduler tcp://HOST:PORT``).

Each Dask worker loads the config and the model once, in a worker plugin, and
scores the files it is given; the payloads come back to the batch process, which
alone writes the store. The recordings must be readable at the same paths on
every worker (a shared folder), and every worker must see the same config.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from distributed import Client, WorkerPlugin, as_completed, get_worker

from qa_audio.batch.jobs import score_job, worker_scorer
from qa_audio.config import Config
from qa_audio.errors import QAError
from qa_audio.pipeline import Scorer

PLUGIN_NAME = "qa-audio-scorer"


class ScorerPlugin(WorkerPlugin):
    """A Dask worker plugin holding one :class:`~qa_audio.pipeline.Scorer` per worker process."""

    def __init__(self, config_path: str, profile: str | None, cpu_threads: int):
        self.config_path, self.profile, self.cpu_threads = config_path, profile, cpu_threads
        self.scorer: Scorer | None = None

    def setup(self, worker) -> None:
        self.scorer = worker_scorer(self.config_path, self.profile, self.cpu_threads)

    def teardown(self, worker) -> None:
        self.scorer = None


def _score_on_worker(path: str) -> dict:
    scorer = cast(ScorerPlugin, get_worker().plugins[PLUGIN_NAME]).scorer
    assert scorer is not None, "the plugin's setup loads the scorer"
    return score_job(scorer, path)


class DaskRunner:
    """Submits files to the cluster, a bounded number at a time, and yields payloads as they finish."""

    def __init__(self, address: str, config: Config, *, cpu_threads: int = 0):
        try:
            self.client = Client(address, timeout="20s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise QAError(f"{address}: cannot reach the Dask scheduler: {exc}") from None
        self.client.register_plugin(ScorerPlugin(config.path, config.profile, cpu_threads or config.model.cpu_threads),
                                    name=PLUGIN_NAME)
        self.slots = max(2, 2 * sum(w.get("nthreads", 1) for w in
                                    self.client.scheduler_info()["workers"].values()))

    def run(self, paths: list[str]) -> Iterator[dict]:
        queue = list(reversed(paths))
        futures: dict = {}
        pool = as_completed(loop=self.client.loop)
        while queue and len(futures) < self.slots:
            path = queue.pop()
            future = self.client.submit(_score_on_worker, path, pure=False)
            futures[future] = path
            pool.add(future)
        for future in pool:
            path = futures.pop(future)
            try:
                yield future.result()
            except Exception as exc:  # a worker lost or killed: this file's error, the batch goes on
                yield {"ok": False, "path": path, "error": f"{path}: the Dask worker failed: {exc}"}
            if queue:
                nxt = queue.pop()
                new = self.client.submit(_score_on_worker, nxt, pure=False)
                futures[new] = nxt
                pool.add(new)

    def close(self) -> None:
        self.client.close()
