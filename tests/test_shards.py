"""mirrorflow.shards: progress of long null jobs in their logs."""

import logging

from mirrorflow.shards import Progress


def test_progress_logs_done_and_time_left(caplog, monkeypatch):
    """Every ``every`` seconds and at the end: units done of the total, time each, time
    left (a clock that advances 10 s per block)."""
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr("mirrorflow.shards.time.monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="mirrorflow.shards"):
        progress = Progress("ALE null shard 1/2", 5, every=25)
        for _ in range(5):
            progress.step()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "ALE null shard 1/2: blocks 3/5 done, 10.00 s each, about 20 s left",
        "ALE null shard 1/2: blocks 5/5 done, 10.00 s each, about 0 s left",
    ]
