"""A full disk at any moment of a run: every write of a whole `echo-cli train` fails in turn,
faked by patching the low-level write; and once on a real, tiny tmpfs where the machine
allows mounting one.

After each: every history.csv row is whole, metrics.json is absent or strict JSON naming the
failed step, the command ends with one line and exit 1 (or 2, for a claim refused before the
run started) and no traceback, and the same command run again succeeds, with no manual step.
"""

import csv
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CONFIGS, TINY_RUN, invoke, sets

from echo_cli.store import rundir

ARGS = ["train", CONFIGS / "lag1.yaml", *sets([*TINY_RUN, "train.epochs=3", "eval.sequences=6",
                                               "train.backend=tensorflow"])]


class FullAt:
    """os.write that fails with ENOSPC at its k-th call (and after, as a full disk does)."""

    def __init__(self, k: int | None):
        self.k, self.calls, self.real = k, 0, os.write

    def __call__(self, fd: int, data) -> int:
        self.calls += 1
        if self.k is not None and self.calls >= self.k:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real(fd, data)


def check_run(run: Path) -> None:
    """Whole rows only, and metrics.json (if any) strict JSON with the failed step."""
    history = run / rundir.HISTORY
    if history.exists():
        text = history.read_bytes().decode()
        assert text == "" or text.endswith("\r\n"), text[-40:]
        rows = list(csv.reader(text.splitlines()))
        assert all(len(row) == len(rows[0]) for row in rows), rows
    metrics = run / rundir.METRICS
    if metrics.exists():
        record = json.loads(metrics.read_text(), parse_constant=lambda c: 1 / 0)
        assert record.get("failed_step"), record


@pytest.mark.slow
def test_a_full_disk_at_every_write_ends_cleanly_and_a_retry_succeeds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    counting = FullAt(None)
    monkeypatch.setattr(os, "write", counting)
    assert invoke(*ARGS).exit_code == 0
    writes = counting.calls
    assert writes >= 8  # the lock, config.yaml, the history's header and rows, the files after
    for k in range(1, writes + 1):
        shutil.rmtree(tmp_path / "runs")
        monkeypatch.setattr(os, "write", FullAt(k))
        result = invoke(*ARGS)
        monkeypatch.setattr(os, "write", counting.real)
        assert result.exit_code in (1, 2), (k, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (k, result.stderr)
        assert "no space left on device" in lines[0], (k, lines[0])
        assert "Traceback" not in result.output
        for run in (tmp_path / "runs").iterdir():
            check_run(run)
            assert not rundir.is_live(run)
        retry = invoke(*ARGS)
        assert retry.exit_code == 0, (k, retry.output)


TMPFS = """
import os, subprocess, sys
mount = sys.argv[1]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount], check=True)
"""


@pytest.mark.slow
def test_a_real_tmpfs_that_fills_up(tmp_path):
    """The issue's own reproduction, where this machine lets us mount a 2 MiB tmpfs."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"this machine does not allow a tmpfs mount: {made.stderr.strip()}")
    try:
        (mount / "filler").write_bytes(b"\0" * (2048 - 96) * 1024)  # leave about 96 KiB
        done = subprocess.run(
            [sys.executable, "-m", "echo_cli", "train", str(CONFIGS / "lag1.yaml"), "--out",
             str(mount / "f"), *sets(["train.epochs=20000", "eval.sequences=20",
                                      "train.backend=tensorflow"])],
            capture_output=True, text=True, timeout=600)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert "no space left on device" in done.stderr
        check_run(mount / "f")
        assert (mount / "f" / rundir.METRICS).is_file()  # the reserve made room for it
    finally:
        subprocess.run(["umount", str(mount)], check=False)
