"""The work of one call, and the runners that do it for a batch: in this process or in a pool of worker
processes (each with its own model). The Dask runner (``cluster``) runs the same ``score_job``."""
from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path

from qa_audio.config import Config, load_config
from qa_audio.errors import QAError
from qa_audio.pipeline import Scorer
from qa_audio.signal.audio import load_audio

AUDIO_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma",
                            ".amr", ".au", ".aif", ".aiff", ".caf", ".webm", ".mp4", ".3gp", ".gsm", ".vox"})


def find_audio(root: str | Path) -> list[Path]:
    """Recording files under ``root`` (recursively, by extension, hidden files skipped), sorted."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise QAError(f"{root}: no such folder")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_SUFFIXES:
                found.append(Path(dirpath) / name)
    return sorted(found)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------- the work of one call
def score_job(scorer: Scorer, path: str) -> dict:
    """Score one file into a picklable payload: ``{"ok": True, analysis, result}`` or ``{"ok": False, error}``.

    Never raises for a bad input; an unexpected failure is reported as this file's error
    so the batch carries on.
    """
    try:
        audio = load_audio(path, max_duration_s=scorer.config.audio.max_duration_s)
        analysis = scorer.recheck(scorer.analyze(audio), audio)
        result = scorer.judge(analysis)
        return {"ok": True, "path": path, "sha256": audio.sha256, "size_bytes": audio.size_bytes,
                "analysis": analysis.to_dict(), "result": result.to_dict(),
                "rss_mb": peak_rss_mb(), "pid": os.getpid()}
    except QAError as exc:
        return {"ok": False, "path": path, "error": str(exc), "rss_mb": peak_rss_mb(), "pid": os.getpid()}
    except Exception as exc:  # an ASR or decoder bug must not stop the night's batch
        return {"ok": False, "path": path, "error": f"{path}: internal error: {type(exc).__name__}: {exc}",
                "rss_mb": peak_rss_mb(), "pid": os.getpid()}


_WORKER_SCORER: Scorer | None = None   # one per worker process, set once by the pool initializer


def worker_scorer(config_path: str, profile: str | None, cpu_threads: int) -> Scorer:
    """A worker's scorer (process pool or Dask): the batch's config, this worker's thread cap, the model
    loaded now, once."""
    config = load_config(config_path, profile=profile)
    config = replace(config, model=replace(config.model, cpu_threads=cpu_threads))
    scorer = Scorer(config)
    _ = scorer.model
    return scorer


def _init_worker(config_path: str, profile: str | None, cpu_threads: int) -> None:
    global _WORKER_SCORER
    _die_with_parent()
    _WORKER_SCORER = worker_scorer(config_path, profile, cpu_threads)


def _pool_job(path: str) -> dict:
    assert _WORKER_SCORER is not None, "the pool initializer sets the scorer"
    return score_job(_WORKER_SCORER, path)


def _die_with_parent() -> None:
    """Linux: a worker gets SIGKILL when the batch process dies, so nothing runs on unsupervised."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class InProcess:
    """Runs jobs in this process (``--workers 1``)."""

    def __init__(self, scorer: Scorer):
        self.scorer = scorer

    def run(self, paths: list[str]) -> Iterator[dict]:
        for path in paths:
            yield score_job(self.scorer, path)

    def close(self) -> None:
        pass


class ProcessPool:
    """``workers`` processes, each with its own model; at most two jobs queued per worker."""

    def __init__(self, config: Config, workers: int):
        import multiprocessing

        cpu = os.cpu_count() or 1
        threads = config.model.cpu_threads or max(1, cpu // workers)
        self.args = (config.path, config.profile, threads)
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=self.context, initializer=_init_worker,
                                   initargs=self.args)

    def run(self, paths: list[str]) -> Iterator[dict]:
        queue = list(reversed(paths))
        pending: dict = {}
        while queue or pending:
            while queue and len(pending) < 2 * self.workers:
                path = queue.pop()
                pending[self.pool.submit(_pool_job, path)] = path
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                path = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    broken = True
                    yield {"ok": False, "path": path, "error": f"{path}: a worker process died while scoring it"}
            if broken:
                for path in pending.values():
                    yield {"ok": False, "path": path, "error": f"{path}: a worker process died while scoring it"}
                pending.clear()
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = self._new_pool()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
