"""The nightly batch: score every recording under a folder into the results store.

* **Incremental**: a call is identified by the SHA-256 of its audio file. A call
  already scored with the same rulebook and model is skipped; a call analysed
  before with the same acoustic and ASR settings is re-judged from its stored
  transcript and timing (no ASR); only new audio is decoded and transcribed.
* **Crash-safe**: each call is written in one transaction after it is scored, so a
  kill loses at most the calls in flight; the next run picks up where it stopped.
* **Failure isolation**: a file that cannot be read becomes an error row with its
  cause; the batch carries on.
* **Workers**: ``workers`` processes (each loads the model once), or a Dask
  distributed cluster (``scheduler``); results always land in the parent's store.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from qa_audio.batch.jobs import InProcess, ProcessPool, find_audio
from qa_audio.batch.metadata import Sidecar, load_sidecar, metadata_for
from qa_audio.config import Config, load_config
from qa_audio.errors import QAError, StoreError, one_line
from qa_audio.judge.analysis import Analysis
from qa_audio.pipeline import Scorer, analysis_key
from qa_audio.results.privacy import Redactor
from qa_audio.results.store import Store, is_server, open_store
from qa_audio.signal.audio import file_sha256


@dataclass(frozen=True)
class BatchSummary:
    """What one batch run did. ``throughput`` is audio seconds per wall second."""

    run_id: int
    found: int
    scored: int
    rescored: int
    skipped: int
    failed: int
    audio_s: float
    wall_s: float
    peak_rss_mb: float | None
    metadata_missing: int
    problems: tuple[str, ...] = field(default=())
    errors: tuple[tuple[str, str], ...] = field(default=())       # (path, cause)

    @property
    def throughput(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "found": self.found, "scored": self.scored, "rescored": self.rescored,
                "skipped": self.skipped, "failed": self.failed, "audio_h": round(self.audio_s / 3600, 4),
                "audio_s": round(self.audio_s, 1), "wall_s": round(self.wall_s, 1),
                "throughput": round(self.throughput, 2), "peak_rss_mb": self.peak_rss_mb,
                "metadata_missing": self.metadata_missing}

    def describe(self) -> str:
        rss = f", peak RSS {self.peak_rss_mb:.0f} MB per worker" if self.peak_rss_mb else ""
        return (f"batch run {self.run_id}: {self.found} found, {self.scored} scored, {self.rescored} rescored "
                f"without ASR, {self.skipped} skipped, {self.failed} failed; {self.audio_s / 3600:.2f} h of new "
                f"audio in {self.wall_s:.1f} s ({self.throughput:.1f} audio s per wall s{rss}); "
                f"{self.metadata_missing} calls with missing metadata")


# --------------------------------------------------------------------------- progress
class Progress:
    """A progress bar with ETA on a terminal; timestamped log lines otherwise (cron)."""

    def __init__(self, total: int, *, stream: TextIO | None = None, tty: bool | None = None,
                 mask: Callable[[str], str | None] | None = None):
        self.stream = stream or sys.stderr
        self.mask = mask
        self.tty = self.stream.isatty() if tty is None else tty
        self.total, self.done, self.started = total, 0, time.perf_counter()
        self.counts = {"scored": 0, "rescored": 0, "skipped": 0, "failed": 0}

    def log(self, message: str) -> None:
        message = one_line(message)
        if self.mask is not None:            # personal numbers in file names stay out of the cron log
            message = self.mask(message) or message
        if self.tty:
            self.stream.write("\r\033[K" + message + "\n")
            self._bar()
        else:
            stamp = datetime.now().isoformat(sep=" ", timespec="seconds")
            self.stream.write(f"{stamp} {message}\n")
        self.stream.flush()

    def step(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        self.done += 1
        if self.tty:
            if kind == "failed":
                self.log(message)
            else:
                self._bar()
        else:
            self.log(f"[{self.done}/{self.total}] {message}")

    def _bar(self) -> None:
        width = 30
        frac = self.done / self.total if self.total else 1.0
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        c = self.counts
        self.stream.write(f"\r\033[K[{bar}] {self.done}/{self.total} {frac:4.0%}  scored {c['scored']} "
                          f"rescored {c['rescored']} skipped {c['skipped']} failed {c['failed']}  "
                          f"{_clock(elapsed)} elapsed, ETA {_clock(eta)}")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# --------------------------------------------------------------------------- the batch
def run_batch(root: str | Path | None, *, db: str | Path, config: Config, workers: int = 1,
              metadata_csv: str | Path | None = None, out_dir: str | Path | None = None, rescore: bool = False,
              scheduler: str | None = None, progress: Progress | None = None,
              command: str = "batch", scorer: Scorer | None = None,
              on_progress: Callable[[Progress], None] | None = None) -> BatchSummary:
    """Score every recording under ``root`` into the store at ``db``; see the module docstring.

    With ``rescore=True`` every stored call (under ``root`` when given) is re-judged with
    ``config`` from its stored transcript and timing, without reading audio or running ASR.
    """
    if workers < 1:
        raise QAError(f"--workers must be at least 1, got {workers}")
    if not is_server(db):
        db = Path(db)
        if not db.parent.is_dir():
            raise StoreError(f"{db}: folder {db.parent} does not exist")
        if db.is_dir():
            raise StoreError(f"{db}: is a directory, not a results store")
    out = Path(out_dir) if out_dir else None
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise QAError(f"{out}: cannot create the output folder: {exc.strerror or exc}") from None
        for stale in out.glob(".*.json.*.tmp"):     # left by a killed run
            stale.unlink(missing_ok=True)
    sidecar = load_sidecar(metadata_csv) if metadata_csv else None
    with open_store(db) as store, store.batch_lock():       # one batch per store, however it is reached
        return _Batch(store, config, root=Path(root) if root else None, workers=workers, sidecar=sidecar,
                      out=out, scheduler=scheduler, progress=progress, scorer=scorer).run(command, rescore)


class _Batch:
    def __init__(self, store: Store, config: Config, *, root, workers, sidecar: Sidecar | None, out, scheduler,
                 progress, scorer):
        self.store, self.config, self.root = store, config, root
        self.workers, self.sidecar, self.out, self.scheduler = workers, sidecar, out, scheduler
        self.progress = progress
        self.scorer = scorer or Scorer(config)
        self.redactor = Redactor(config.privacy)
        self.key = analysis_key(config)
        self.counts = {"found": 0, "scored": 0, "rescored": 0, "skipped": 0, "failed": 0, "audio_s": 0.0}
        self.rss: list[float] = []
        self.errors: list[tuple[str, str]] = []
        self.metadata_missing = 0
        self.problems: list[str] = list(sidecar.problems) if sidecar else []
        self.client_scorers: dict[str, Scorer] = {}
        self.unknown_clients: set[str] = set()

    def _scorer_for(self, meta: dict | None) -> Scorer:
        """The scorer of the call's client line (``clients:`` in the config), else the batch's own."""
        client = (meta or {}).get("client")
        if not client:
            return self.scorer
        path = self.config.clients.get(client)
        if path is None:
            if client not in self.unknown_clients and self.config.clients:
                self.unknown_clients.add(client)
                self.progress.log(f"metadata: client {client!r} has no rulebook under clients: in "
                                  f"{self.config.path}; its calls are judged by {self.config.rulebook_name}")
            return self.scorer
        if client not in self.client_scorers:
            config = load_config(path)
            if analysis_key(config) != self.key:
                raise QAError(f"{path}: client {client!r}'s config changes acoustic or speech-model settings; a "
                              f"client rulebook may change rules, lexicons and scoring only (it extends the main "
                              f"config)")
            self.client_scorers[client] = Scorer(config, model_info=self.scorer._model_info)
        return self.client_scorers[client]
    def run(self, command: str, rescore: bool) -> BatchSummary:
        started = time.perf_counter()
        model = None if rescore else self.scorer.model_name
        run_id = self.store.start_run(command=command, config=self.config.path, rulebook=self.config.rulebook,
                                      model=model, workers=self.workers, scheduler=self.scheduler)
        self.run_id = run_id
        status = "interrupted"
        try:
            if rescore:
                self._rescore_stored()
            else:
                self._score_folder()
            status = "done"
        finally:
            if self.progress:
                self.progress.close()
            wall_s = time.perf_counter() - started
            peak = round(max(self.rss), 1) if self.rss else None
            self.store.finish_run(run_id, status=status, counts=self.counts, wall_s=wall_s, peak_rss_mb=peak)
        c = self.counts
        return BatchSummary(run_id, int(c["found"]), int(c["scored"]), int(c["rescored"]), int(c["skipped"]),
                            int(c["failed"]), c["audio_s"],
                            wall_s, peak, self.metadata_missing, tuple(self.problems), tuple(self.errors))

    # ------------------------------------------------------------------ plan
    def _score_folder(self) -> None:
        files = find_audio(self.root)
        self.counts["found"] = len(files)
        self.progress = self.progress or Progress(len(files))
        self.progress.mask = self.progress.mask or self.redactor.identifier
        self.progress.total = len(files)
        for problem in self.problems:
            self.progress.log(f"metadata: {problem}")
        model = self.scorer.model_name
        todo: list[str] = []
        self.planned: dict[str, tuple[str, int]] = {}
        seen: dict[str, str] = {}
        copies: list[tuple[str, str, str]] = []      # (path, first path with that content, sha)
        for path in files:
            name = str(path)
            try:
                sha, size = file_sha256(path)
            except QAError as exc:
                self._failed(name, "", str(exc))
                continue
            if sha in seen:
                copies.append((name, seen[sha], sha))     # decided once the first copy is done
                continue
            seen[sha] = name
            meta = self._metadata(name, sha)
            rulebook = self._scorer_for(meta).config.rulebook
            if self.store.has_result(sha, rulebook=rulebook, model=model, key=self.key):
                self.store.update_metadata(sha, path=name, metadata=meta)
                self._write_json_if_missing(sha)
                self._skipped(name, "already scored with this rulebook and model")
                continue
            stored = self.store.analysis_for(sha, key=self.key)
            if stored is not None:
                self._rejudge(name, sha, size, stored)
                continue
            self.planned[name] = (sha, size)
            todo.append(name)
        if todo:
            self._execute(todo)
        failed = dict(self.errors)
        for name, first, sha in copies:
            if first in failed:         # a bad file copied twice is two bad files, each with its error row
                self._failed(name, sha, f"{name}: same content as {first}: {failed[first]}")
            else:
                self._skipped(name, f"same audio as {first}")

    def _rescore_stored(self) -> None:
        stored = self.store.stored_analyses(key=self.key)
        if self.root is not None:
            root = str(self.root.resolve())
            stored = [(sha, a) for sha, a in stored if str(Path(a.audio["path"]).resolve()).startswith(root)]
        self.counts["found"] = len(stored)
        self.progress = self.progress or Progress(len(stored))
        self.progress.mask = self.progress.mask or self.redactor.identifier
        self.progress.total = len(stored)
        for sha, analysis in stored:
            current = self.store.current_result(sha)
            rulebook = self._scorer_for(self._stored_metadata(sha)).config.rulebook
            if current and current.versions["rulebook"] == rulebook:
                self._write_json_if_missing(sha)
                self._skipped(analysis.audio["path"], "already scored with this rulebook")
                continue
            self._rejudge(analysis.audio["path"], sha, None, analysis)

    # ------------------------------------------------------------------ outcomes
    def _metadata(self, path: str, sha: str | None = None) -> dict:
        stored = self.store.call_metadata(sha) if sha else None
        meta = metadata_for(Path(path), root=self.root if self.root and self.root.is_dir() else None,
                            sidecar=self.sidecar, settings=self.config.metadata, stored=stored)
        for name in ("agent_name", "team"):       # free text: a number typed into it is masked on the way in
            if isinstance(meta.get(name), str):
                meta[name] = self.redactor.identifier(meta[name])
        return meta

    def _rejudge(self, path: str, sha: str, size: int | None, analysis: Analysis) -> None:
        result = self.scorer.judge(analysis).to_dict()
        self._save(path, sha, size, analysis.to_dict(), result, kind="rescored")

    def _execute(self, paths: list[str]) -> None:
        if self.scheduler:
            try:
                from qa_audio.batch.cluster import DaskRunner
            except ImportError:
                raise QAError("--scheduler needs Dask distributed: pip install 'qa-audio[cluster]'") from None
            runner: DaskRunner | ProcessPool | InProcess = DaskRunner(self.scheduler, self.config)
        elif self.workers > 1:
            runner = ProcessPool(self.config, self.workers)
        else:
            runner = InProcess(self.scorer)
        try:
            for payload in runner.run(paths):
                self._take(payload)
        finally:
            runner.close()

    def _take(self, payload: dict) -> None:
        path = payload["path"]
        sha, size = self.planned[path]
        if payload.get("sha256") and payload["sha256"] != sha:     # rewritten since it was hashed
            self.progress.log(f"{path}: the file changed after it was planned; stored under the "
                              f"hash of the bytes actually decoded")
            sha, size = payload["sha256"], payload["size_bytes"]
        if payload.get("rss_mb"):
            self.rss.append(payload["rss_mb"])
        if not payload["ok"]:
            self._failed(path, sha, payload["error"])
            return
        result = payload["result"]
        if result["versions"]["rulebook"] != self.config.rulebook:
            self._failed(path, sha, f"{path}: the worker used rulebook {result['versions']['rulebook']}, "
                                    f"not {self.config.rulebook}: give every worker the same config")
            return
        self.counts["audio_s"] += result["audio"]["duration_s"] or 0.0
        self._save(path, sha, size, payload["analysis"], result, kind="scored")

    def _save(self, path: str, sha: str, size: int | None, analysis: dict, result: dict, *, kind: str) -> None:
        fresh = kind == "scored" or self.root is not None or self.sidecar is not None
        meta = self._metadata(path, sha) if fresh else self._stored_metadata(sha)
        facts = {k: v for k, v in meta.items() if k == "hangup_side" and v}
        scorer = self._scorer_for(meta)
        if facts or scorer is not self.scorer:   # metadata facts (CLS-3: who hung up), a client's own rulebook
            result = scorer.judge(Analysis.from_dict(analysis), facts=facts or None).to_dict()
        stem = self.redactor.identifier(Path(path).stem)      # a phone number in a file name never becomes an id
        if self.config.privacy.mask_in == "store":       # personal numbers never reach the disk
            analysis, result = self.redactor.analysis(analysis), self.redactor.result(result)
        call_id = self.store.save_call(sha256=sha, path=path, size_bytes=size, call_id=stem or sha[:16], metadata=meta,
                                       analysis=analysis, result=result, run_id=self.run_id)
        self._write_json(call_id, dict(result, call_id=call_id), meta)
        self.counts[kind] += 1
        self.metadata_missing += bool(meta["missing"])
        missing = f"; metadata missing: {', '.join(meta['missing'])}" if meta["missing"] else ""
        score = "–" if result["score"] is None else f"{result['score']:g}"
        self.progress.step(kind, f"{kind} {path} → {call_id}: {score} {result['verdict']}{missing}")

    def _stored_metadata(self, sha: str) -> dict:
        return self.store.call_metadata(sha) or {"missing": []}

    def _failed(self, path: str, sha: str, error: str) -> None:
        self.store.save_error(path=path, sha256=sha, error=error, run_id=self.run_id)
        self.counts["failed"] += 1
        self.errors.append((path, error))
        self.progress.step("failed", f"error {error}")

    def _skipped(self, path: str, why: str) -> None:
        self.counts["skipped"] += 1
        self.progress.step("skipped", f"skipped {path}: {why}")

    # ------------------------------------------------------------------ per-call JSON files
    def _write_json(self, call_id: str, result: dict, meta: dict) -> None:
        if self.out is None:
            return
        payload = dict(self.redactor.result(result), metadata={k: v for k, v in meta.items() if k != "missing"} | {
            "missing": list(meta.get("missing", ()))})
        target = self.out / f"{call_id}.json"
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, target)

    def _write_json_if_missing(self, sha: str) -> None:
        if self.out is None:
            return
        call = self.store.call_by_hash(sha)
        if call is not None and call.result is not None and not (self.out / f"{call.call_id}.json").exists():
            self._write_json(call.call_id, call.result.to_dict(), call.metadata)
