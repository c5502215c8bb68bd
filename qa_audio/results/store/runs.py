"""Batch runs and the errors they met."""
from __future__ import annotations

from qa_audio.results.store.base import StoreBase, _now


class RunsPart(StoreBase):
    """Batch runs and the errors they met."""

    # ------------------------------------------------------------------ runs
    def start_run(self, *, command: str, config: str, rulebook: str, model: str | None, workers: int,
                  scheduler: str | None) -> int:
        with self._tx() as cur:
            # a batch holds the store's lock while it runs, so any run still "running" was killed
            cur.execute("UPDATE runs SET status = 'killed' WHERE status = 'running'")
            cur.execute("INSERT INTO runs (started_at, status, command, config, rulebook, model, workers, scheduler)"
                        " VALUES (?, 'running', ?, ?, ?, ?, ?, ?)",
                        (_now(), command, config, rulebook, model, workers, scheduler))
            return cur.lastrowid

    def finish_run(self, run_id: int, *, status: str, counts: dict, wall_s: float,
                   peak_rss_mb: float | None) -> None:
        with self._tx() as cur:
            cur.execute("UPDATE runs SET finished_at = ?, status = ?, found = ?, scored = ?, rescored = ?,"
                        " skipped = ?, failed = ?, audio_s = ?, wall_s = ?, peak_rss_mb = ? WHERE id = ?",
                        (_now(), status, counts.get("found", 0), counts.get("scored", 0),
                         counts.get("rescored", 0), counts.get("skipped", 0), counts.get("failed", 0),
                         counts.get("audio_s", 0.0), wall_s, peak_rss_mb, run_id))

    def runs(self) -> list[dict]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY id")]

    def save_error(self, *, path: str, sha256: str, error: str, run_id: int | None) -> None:
        now = _now()
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO errors (path, audio_sha256, error, first_run_id, last_run_id, first_seen, last_seen)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path, audio_sha256) DO UPDATE SET"
                " error = excluded.error, last_run_id = excluded.last_run_id, attempts = errors.attempts + 1,"
                " last_seen = excluded.last_seen",
                (path, sha256, error, run_id, run_id, now, now),
            )

    def errors(self) -> list[dict]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM errors ORDER BY path")]
