"""`echo-cli stream` reads a pipe in chunks of whatever has arrived: the answers are exactly those
of feeding one number at a time, however the lines arrive, and a line sent alone is answered
without waiting for more.

Semantics only: speed is measured by `echo-cli bench stream`, never here.
"""

import importlib.util
import io
import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import CONFIGS, ROOT, invoke, sets

from echo_cli.cli import use

# a model that streams, small enough to train in seconds; lag 2, so that the first two
# numbers of a stream have no echo and a chunk can end inside them
STREAM = ["data.n_unique=10", "data.length=10", "data.lag=2", "model.units=12",
          "train.epochs=30", "train.batch_size=3", "train.learning_rate=0.01",
          "eval.sequences=6"]
BACKENDS = ["tensorflow", pytest.param("jax", marks=pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="no JAX"))]
WAIT = 120  # seconds for an answer: the first includes the process's start-up


def child_env(backend: str) -> dict[str, str]:
    """The environment of a child on the run's own backend (the tests' default is TensorFlow)."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    return {**env, "KERAS_BACKEND": backend, "COLUMNS": "100"}


@pytest.fixture(scope="module", params=BACKENDS)
def run(request, tmp_path_factory):
    """A small streaming run on each backend (each compiles the loop its own way)."""
    backend = request.param
    out = tmp_path_factory.mktemp("chunks") / backend
    trained = subprocess.run(
        [sys.executable, "-m", "echo_cli", "train", str(CONFIGS / "stream.yaml"),
         *sets([*STREAM, f"train.backend={backend}"]), "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=child_env(backend), cwd=ROOT)
    assert trained.returncode == 0, trained.stderr[-2000:]
    return out, backend


def lines_in(count: int, seed: int) -> list[str]:
    """count lines of stdin: integers in range, with a few bad ones among them (blank, not an
    integer, out of range, a non-ASCII digit, spaces and a carriage return around a good one)."""
    rng = random.Random(seed)
    lines = [str(rng.randrange(10)) for _ in range(count)]
    for bad in ("", "seven", "42", "٣", "  7 ", "3\r", "-1", "+4"):
        lines.insert(rng.randrange(1, len(lines)), bad)
    return lines


def ask(backend: str, run_dir: Path) -> subprocess.Popen:
    """`echo-cli stream RUN` with pipes to its stdin, stdout and stderr."""
    return subprocess.Popen([sys.executable, "-m", "echo_cli", "stream", str(run_dir)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=child_env(backend), cwd=ROOT)


def reader(*streams, keep=lambda line: True) -> queue.Queue:
    """The lines of a child's outputs as they come, in one queue; None at each one's end."""
    lines: queue.Queue = queue.Queue()

    def read(stream):
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if keep(line):
                lines.put(line)
        lines.put(None)

    for stream in streams:
        threading.Thread(target=read, args=(stream,), daemon=True).start()
    return lines


def said(line: str) -> bool:
    """A line of stream's own: an answer, or the note for a bad line."""
    return line == "-" or line.isdigit() or line.startswith("skipped")


def one_at_a_time(backend: str, run_dir: Path, lines: list[str]) -> list[str]:
    """Each line written alone, and its answer (or its note on stderr) read before the next
    is written: what stream says for each line, in order."""
    proc = ask(backend, run_dir)
    heard = reader(proc.stdout, proc.stderr, keep=said)
    answers = []
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        proc.stdin.write(line.encode() + (b"" if last else b"\n"))
        if last:  # the last line has no newline: the end of input completes it
            proc.stdin.close()
        else:
            proc.stdin.flush()
        try:  # no more input is written until this line is answered
            answers.append(heard.get(timeout=WAIT))
        except queue.Empty:
            proc.kill()
            pytest.fail(f"no answer to line {i + 1} ({line!r}) within {WAIT} s")
    assert proc.wait(timeout=WAIT) == 0
    assert [heard.get(timeout=WAIT), heard.get(timeout=WAIT)] == [None, None]  # nothing more
    return answers


def all_at_once(backend: str, run_dir: Path, data: bytes, *, pieces: int = 1,
                seed: int = 0) -> list[str]:
    """data written in `pieces` random-sized pieces (cut anywhere, even inside a line or a
    character) with pauses between them; stdout and stderr merged, in the order written."""
    proc = subprocess.Popen([sys.executable, "-m", "echo_cli", "stream", str(run_dir)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=child_env(backend), cwd=ROOT)
    merged = reader(proc.stdout, keep=said)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), pieces - 1))
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        proc.stdin.write(data[start:end])
        proc.stdin.flush()
        time.sleep(rng.choice([0, 0, 0.001, 0.02]))
    proc.stdin.close()
    assert proc.wait(timeout=WAIT) == 0
    return list(iter(merged.get, None))


@pytest.mark.slow
def test_chunked_answers_are_those_of_one_number_at_a_time(run):
    """The same lines fed one at a time (each answered before the next is sent), all at once,
    and in irregular bursts: the same answers and notes, in the same order, one per line."""
    run_dir, backend = run
    lines = lines_in(1500, seed=1)  # more than one compiled loop's 1,024 steps
    alone = one_at_a_time(backend, run_dir, lines)
    assert len(alone) == len(lines)
    assert alone[:2] == ["-", "-"]  # lag 2: no echo for the first two numbers
    assert len(set(alone[2:])) > 2, "the model answers one thing whatever it reads"
    notes = [line for line in alone if line.startswith("skipped")]
    assert len(notes) == 5 and "skipped a blank line; give one integer per line" in notes
    data = "\n".join(lines).encode()  # the last line without a newline
    assert all_at_once(backend, run_dir, data) == alone
    assert all_at_once(backend, run_dir, data, pieces=60, seed=2) == alone


STREAMER = """
import random, sys
from pathlib import Path
import numpy as np
from echo_cli.analysis.stream import LOOP_STEPS, Streamer
from echo_cli.analysis.trained import load_run
run = load_run(Path(sys.argv[1]))
values = np.random.default_rng(5).integers(0, run.cfg.data.n_unique, size=3000)
one, chunked = Streamer(run), Streamer(run)
echoes = [one.push(int(v)) for v in values]
rng = random.Random(3)
sizes = [1, 0, 1, 2, LOOP_STEPS - 1, LOOP_STEPS, LOOP_STEPS + 1]
ids, probs, done = [], [], 0
while done < len(values):
    size = sizes.pop(0) if sizes else rng.choice([1, 3, 17, 200])
    got = chunked.feed(values[done:done + size])
    assert len(got[0]) == len(got[1]) == max(0, min(size, len(values) - done) - max(0, 2 - done))
    ids += got[0].tolist()
    probs += got[1].tolist()
    done += size
kept = [e for e in echoes if e is not None]
assert ids == [e[0] for e in kept], "the echoes differ"
assert max(abs(p - e[1]) for p, e in zip(probs, kept)) < 1e-6
print(run.cfg.train.backend, len(ids), "echoes identical")
"""


@pytest.mark.slow
def test_feeding_a_chunk_echoes_what_pushing_each_number_did(run):
    """Streamer.feed (one compiled loop per chunk) against push (one compiled step per
    number, as stream answered before chunks): chunks of 0, 1 and around the loop's length."""
    run_dir, backend = run
    done = subprocess.run([sys.executable, "-c", STREAMER, str(run_dir)], capture_output=True,
                          text=True, timeout=600, env=child_env(backend), cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [backend, "2998", "echoes", "identical"]


@pytest.mark.slow
def test_a_line_sent_alone_is_answered_without_more_input(run):
    run_dir, backend = run
    proc = ask(backend, run_dir)
    out = reader(proc.stdout)
    try:
        for value in ("3", "1", "4"):
            proc.stdin.write(f"{value}\n".encode())
            proc.stdin.flush()  # and nothing more until it is answered
            answer = out.get(timeout=WAIT)
            assert answer is not None and (answer == "-" or answer.isdigit()), answer
    finally:
        proc.stdin.close()
    assert proc.wait(timeout=WAIT) == 0


# ------------------------------------------------------------------------ lines of a pipe

class Trickle(io.RawIOBase):
    """A pipe that hands over its bytes a few at a time."""

    def __init__(self, data: bytes, sizes: list[int]):
        self.data, self.sizes = data, sizes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = min(len(buffer), self.sizes[len(self.data) % len(self.sizes)], len(self.data))
        buffer[:size], self.data = self.data[:size], self.data[size:]
        return size


def piped(data: bytes, sizes: list[int]) -> tuple[list[str], bool]:
    """The lines _piped_lines yields, and whether it ended with the too-long error."""
    stdin = io.TextIOWrapper(io.BufferedReader(Trickle(data, sizes)), encoding="utf-8",
                             errors="surrogateescape", newline="\n")
    lines = []
    try:
        for chunk in use._piped_lines(stdin):
            lines += chunk
    except Exception as err:  # noqa: BLE001 - the one expected is checked below
        assert "a line of stdin is longer than" in str(err), err
        return lines, True
    return lines, False


def line_by_line(data: bytes) -> tuple[list[str], bool]:
    """What stream read before chunks: readline(MAX_LINE + 1), too long past MAX_LINE."""
    stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape",
                             newline="\n")
    lines = []
    while line := stdin.readline(use.MAX_LINE + 1):
        if len(line) > use.MAX_LINE:
            return lines, True
        lines.append(line.removesuffix("\n"))
    return lines, False


@pytest.mark.parametrize("data", [
    b"1\n2\n3\n", b"1\n2\n3", b"", b"\n\n", b"12345\n1234567\n2\n", b"1234567", b"12345678",
    b"123456789\n1\n", b"1\n12345678", b"1\r\n2\r\n", "é٣\n".encode() + b"\xff\n4",
    b"1234567\n12345678\n1\n", "٣٣٣٣\n1".encode(),
], ids=repr)
@pytest.mark.parametrize("sizes", [[1], [3, 1, 7], [64]], ids=str)
def test_a_pipe_read_in_chunks_gives_the_lines_readline_gave(monkeypatch, data, sizes):
    """The same lines, and the too-long error at the same place, however the bytes arrive;
    here a line may have 7 characters (8 with its newline)."""
    monkeypatch.setattr(use, "MAX_LINE", 8)
    assert piped(data, sizes) == line_by_line(data)


# ------------------------------------------------------------------------ the benchmark

def test_the_busy_core_runs_while_measured_and_is_stopped_after():
    from echo_cli.analysis.bench import busy_core

    with busy_core() as proc:
        assert proc.poll() is None  # spinning
    assert proc.poll() is not None


@pytest.mark.slow
def test_bench_stream_reports_the_rate_calm_and_with_a_core_busy(tmp_path):
    result = invoke("bench", "stream", "--numbers", "40", "--out", tmp_path / "stream.json")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "stream.json").read_text())
    assert record["date"] and record["machine"]
    stream = record["stream"]
    assert stream["numbers"] == 40 and stream["backend"] == "tensorflow"
    busy = stream["busy"]
    assert busy["cores_busy"] == 1
    for figures in (stream, busy):
        assert figures["numbers_per_second"] == 40 / figures["seconds"]
        assert figures["startup_seconds"] > 0 and figures["load_average"] >= 0
    text = " ".join(result.output.split())
    assert "numbers/s" in text and "calm" in text and "one core busy" in text
