"""TensorBoard event files, written live, laid out the way Keras's TensorBoard callback does.

    board = RunBoard(run_dir / "tb", hparams={"model.units": 50}, accuracy="accuracy")
    board.epoch(3, {"epoch": 3, "loss": 0.41, "accuracy": 0.8}, wall=time.time())
    board.finish(metrics, images={"curves": png}, texts={"examples": markdown})

    RUN/tb/train/       epoch_loss, epoch_accuracy every epoch              (run "train")
    RUN/tb/validation/  epoch_loss, epoch_accuracy on validation epochs     (run "validation")
    RUN/tb/             curves image, examples text, HParams and the held-out figures

The same tags in two runs make the curves overlay in one chart, as for a Keras model. The epochs
are written and flushed as they arrive from the trainer, at most once per PUSH_SECONDS (the
first at once), so `tensorboard --logdir runs` follows a run while it trains.

Why tensorboardX: it writes scalars, images, text and HParams in TensorBoard's format without
importing TensorFlow (a run on JAX stays free of it), and it is maintained for that. TensorBoard's
own public writer (tensorboard.summary.Writer) writes scalars only and imports TensorFlow when it
is installed; the rest of TensorBoard's writing code (RecordWriter, raw Event protos) is not a
public API. TensorBoard itself is needed only to look at the files.

tensorboardX's SummaryWriter hands events to a thread of its own, which dies on a full disk with
a traceback and then blocks the trainer once its queue is full. So the events are written in
the caller's thread, through the file writer under SummaryWriter (EventsWriter): a write that
fails raises where it can be recorded, as every other file of a run does. Two of its traps are
avoided too: add_hparams opens a sub-run of its own (the HParams go into this run instead), and
two writers of one second would share a file name (each file gets a suffix of its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import time
import uuid
from pathlib import Path
from typing import Any

TRAIN, VALIDATION = "train", "validation"  # Keras's run names
HPARAMS_SUFFIX = ".hparams"  # the file of a run's HParams, replaced when rewritten
PUSH_SECONDS = 1.0  # epochs are written and flushed at most this often (the first at once)
# metrics.json's held-out figures, as tags of the root run: the HParams table's metrics
HELDOUT_TAGS = {"heldout_accuracy": "heldout/accuracy", "ci95_low": "heldout/accuracy_ci95_low",
                "ci95_high": "heldout/accuracy_ci95_high", "heldout_loss": "heldout/loss",
                "chance_accuracy": "heldout/chance", "baseline_loss": "heldout/baseline_loss",
                "heldout_exact_match": "heldout/exact_match"}
STATUS = {"success": "STATUS_SUCCESS", "failure": "STATUS_FAILURE", "stopped": "STATUS_UNKNOWN"}


def installed() -> bool:
    """Whether tensorboardX, the writer, can be imported."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        return False
    return True


class EventFile:
    """One event file of a TensorBoard run (folder), written and flushed in the caller's thread
    by tensorboardX's EventsWriter."""

    def __init__(self, folder: Path, *, suffix: str = "", purge_step: int | None = None):
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        folder.mkdir(parents=True, exist_ok=True)
        self.writer = EventsWriter(str(folder / "events"),
                                   f".{os.getpid()}.{uuid.uuid4().hex[:6]}{suffix}")
        if purge_step is not None:  # TensorBoard drops what earlier files hold from here on
            self.writer.write_event(Event(step=purge_step, wall_time=time.time(),
                                          session_log=SessionLog(status=SessionLog.START)))

    def add(self, summary, *, step: int, wall: float) -> None:
        from tensorboardX.proto.event_pb2 import Event

        self.writer.write_event(Event(summary=summary, step=step, wall_time=wall))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def number(value: Any) -> float | None:
    """A finite number from a history cell or a metrics field ('' and None are no number)."""
    if isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result == result and abs(result) != float("inf") else None


def epoch_scalars(row: dict[str, Any]) -> dict[str, dict[str, float]]:
    """A history row as {run: {tag: value}}: loss -> train epoch_loss, validation_accuracy ->
    validation epoch_accuracy, as Keras names them."""
    runs: dict[str, dict[str, float]] = {}
    for key, raw in row.items():
        value = number(raw)
        if key == "epoch" or value is None:
            continue
        run, name = ((VALIDATION, key.removeprefix("validation_"))
                     if key.startswith("validation_") else (TRAIN, key))
        runs.setdefault(run, {})[f"epoch_{name}"] = value
    return runs


def _summary(values: dict[str, float], described: dict[str, str]):
    """One Summary of several scalars; `described` holds the descriptions to attach."""
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    out = Summary()
    for tag, value in values.items():
        item = out.value.add(tag=tag, simple_value=value)
        if tag in described:
            item.metadata.CopyFrom(SummaryMetadata(
                summary_description=described[tag],
                plugin_data=SummaryMetadata.PluginData(plugin_name="scalars")))
    return out


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    return struct.unpack(">II", png[16:24])


def _image(tag: str, png: bytes):
    """An image summary of PNG bytes as they are (no re-encoding, no Pillow)."""
    from tensorboardX.proto.summary_pb2 import Summary

    width, height = png_size(png)
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
        height=height, width=width, colorspace=4 if png[25] in (4, 6) else 3,
        encoded_image_string=png))])


class RunBoard:
    """A run's tb/ as it trains: opened at the first epoch, closed by finish (or close).

    Nothing raises out of `epoch`: a failure to write is kept and raised by `finish`, so a full
    disk costs the training nothing but the tb/ step.
    """

    def __init__(self, folder: Path, *, hparams: dict[str, Any], accuracy: str = "accuracy"):
        self.folder, self.hparams = folder, hparams
        self.descriptions = {"epoch_accuracy": f"{accuracy}, each epoch",
                             "epoch_loss": "the mean loss, each epoch"}
        self.described: set[tuple[str, str]] = set()  # (run, tag): described in its first event
        self.writers: dict[str, Any] = {}
        self.pending: list[tuple[int, float, dict[str, dict[str, float]]]] = []
        self.pushed = 0.0
        self.first: int | None = None
        self.last = 0
        self.started = time.time()
        self.error: Exception | None = None

    def epoch(self, epoch: int, row: dict[str, Any], *, wall: float) -> None:
        """Record one epoch's row (history.csv's) at its wall time."""
        if self.error is not None:
            return
        if self.first is None:
            self.first = epoch
        self.last = epoch
        self.pending.append((epoch, wall, epoch_scalars(row)))
        if time.time() - self.pushed >= PUSH_SECONDS:  # the first epoch at once
            try:
                self._push()
            except Exception as err:  # noqa: BLE001 - kept, and raised by finish
                self.error = err

    def _push(self) -> None:
        for step, wall, runs in self.pending:
            for run, values in runs.items():
                if run not in self.writers:
                    # a run resumed at epoch k: TensorBoard drops what an earlier file holds
                    # from step k on (epochs trained after the checkpoint, then lost)
                    self.writers[run] = EventFile(self.folder / run, purge_step=(
                        self.first if self.first and self.first > 1 else None))
                described = {t: self.descriptions[t] for t in values
                             if t in self.descriptions and (run, t) not in self.described}
                self.writers[run].add(_summary(values, described), step=step, wall=wall)
                self.described.update((run, tag) for tag in described)
        for writer in self.writers.values():
            writer.flush()
        self.pending.clear()
        self.pushed = time.time()

    def finish(self, metrics: dict[str, Any], *, images: dict[str, bytes],
               texts: dict[str, str], status: str) -> None:
        """Write what the run ended with into the root run, then close every file.

        Args:
            metrics: metrics.json's record; its held-out figures become the HParams metrics.
            images: PNG bytes by tag, e.g. {"curves": curves.png}.
            texts: Markdown by tag, e.g. {"examples": the decoded held-out examples}.
            status: "success", "failure" or "stopped", the HParams session's status.

        Raises:
            Exception: what stopped an earlier write, or this one.
        """
        try:
            if self.error is not None:
                raise self.error
            self._push()
            now = time.time()
            from tensorboardX.summary import text as text_summary

            with contextlib.closing(EventFile(self.folder)) as root:
                heldout = {tag: value for key, tag in HELDOUT_TAGS.items()
                           if (value := number(metrics.get(key))) is not None}
                if heldout:
                    root.add(_summary(heldout, {}), step=self.last, wall=now)
                for tag, png in images.items():
                    root.add(_image(tag, png), step=self.last, wall=now)
                for tag, text in texts.items():  # Markdown, under TAG/text_summary
                    root.add(text_summary(tag, text), step=self.last, wall=now)
            write_session(self.folder, self.hparams, status=status, start=self.started)
        finally:
            self.close()

    def close(self) -> None:
        """Close every file (what was handed over is written); safe to call twice."""
        writers, self.writers = self.writers, {}
        for writer in writers.values():
            with contextlib.suppress(Exception):
                writer.close()


def hparam_value(value: Any) -> bool | int | float | str:
    """A config value as TensorBoard's HParams can hold it (lists and None as JSON text)."""
    return value if isinstance(value, (bool, int, float, str)) else json.dumps(value)


def _plugin_summary(tag: str, **data):
    """One HParams summary: `data` is a field of HParamsPluginData (session_start_info,
    session_end_info or experiment)."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    content = HParamsPluginData(version=0, **data).SerializeToString()
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="hparams",
                                                                       content=content))
    return Summary(value=[Summary.Value(tag=f"_hparams_/{tag}", metadata=metadata)])


def _session_start(hparams: dict[str, Any], *, start: float, name: str = ""):
    from tensorboardX.proto.plugin_hparams_pb2 import SessionStartInfo

    info = SessionStartInfo(start_time_secs=start, group_name=name)
    for key, raw in hparams.items():
        value = hparam_value(raw)
        if isinstance(value, bool):
            info.hparams[key].bool_value = value
        elif isinstance(value, str):
            info.hparams[key].string_value = value
        else:
            info.hparams[key].number_value = float(value)
    return _plugin_summary("session_start_info", session_start_info=info)


def write_session(folder: Path, hparams: dict[str, Any], *, status: str, start: float,
                  name: str = "") -> None:
    """The run's HParams session (its values, its status) in folder's own file, replacing any
    written before: TensorBoard reads one session per run."""
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import SessionEndInfo

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"events.out.tfevents.*{HPARAMS_SUFFIX}"):
        old.unlink()
    end = SessionEndInfo(status=Status.Value(STATUS[status]), end_time_secs=time.time())
    with contextlib.closing(EventFile(folder, suffix=HPARAMS_SUFFIX)) as writer:
        writer.add(_session_start(hparams, start=start, name=name), step=0, wall=start)
        writer.add(_plugin_summary("session_end_info", session_end_info=end), step=0,
                   wall=time.time())


def write_experiment(folder: Path, domains: dict[str, list[Any]],
                     metrics: list[tuple[str, str]]) -> None:
    """A sweep's HParams experiment: the swept keys with their values (one type each) and the
    metrics, (run, tag) pairs relative to each run's tb/, replacing any written before."""
    from google.protobuf.struct_pb2 import ListValue
    from tensorboardX.proto.api_pb2 import DataType, Experiment, HParamInfo, MetricInfo, MetricName

    infos = []
    for name, values in domains.items():
        kind = ("DATA_TYPE_BOOL" if all(isinstance(v, bool) for v in values) else
                "DATA_TYPE_STRING" if all(isinstance(v, str) for v in values) else
                "DATA_TYPE_FLOAT64")
        listed = ListValue()
        listed.extend([float(v) if kind == "DATA_TYPE_FLOAT64" else v for v in values])
        infos.append(HParamInfo(name=name, type=DataType.Value(kind), domain_discrete=listed))
    experiment = Experiment(hparam_infos=infos, metric_infos=[
        MetricInfo(name=MetricName(group=group, tag=tag), display_name=f"{group} {tag}".strip())
        for group, tag in metrics], time_created_secs=time.time())
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"events.out.tfevents.*{HPARAMS_SUFFIX}"):
        old.unlink()
    with contextlib.closing(EventFile(folder, suffix=HPARAMS_SUFFIX)) as writer:
        writer.add(_plugin_summary("experiment", experiment=experiment), step=0, wall=time.time())


def write_images(folder: Path, images: dict[str, bytes], *, step: int, suffix: str) -> None:
    """PNG images by tag into folder's event file named by suffix, replacing the one before."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"events.out.tfevents.*{suffix}"):
        old.unlink()
    with contextlib.closing(EventFile(folder, suffix=suffix)) as writer:
        for tag, png in images.items():
            writer.add(_image(tag, png), step=step, wall=time.time())


def epoch_times(folder: Path) -> dict[int, float]:
    """{epoch: wall time} of the epoch_loss events in folder (a run's tb/train/), the later file
    winning: what a sweep's MLflow child runs are stamped with."""
    from tensorboardX.proto.event_pb2 import Event

    times: dict[int, float] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at + 12 <= len(data):  # TFRecord: length, its CRC, the record, its CRC
            (length,) = struct.unpack("<Q", data[at:at + 8])
            record = data[at + 12:at + 12 + length]
            at += 12 + length + 4
            if len(record) < length:
                break  # a record still being written
            event = Event.FromString(record)
            if any(v.tag == "epoch_loss" for v in event.summary.value):
                times[int(event.step)] = event.wall_time
    return times
