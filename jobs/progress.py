"""What a person (or a scheduler's log) sees while the nightly job runs, one update per step.

Why two renderings: an operator at a terminal wants a live display (spinner, steps done of total,
elapsed time); Airflow, cron and Kubernetes capture stdout to a file, where cursor movement is garbage,
so there every update is one timestamped plain line. `open_display` picks by whether the stream is a
TTY; both render the same facts via `describe`, and `runlog.step` drives them.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class StepFacts(Protocol):
    """What a display shows of a step (jobs.runlog.StepRecord, which drives the display, has it); a
    protocol, so that imports run one way (runlog -> progress)."""

    step: str
    status: str
    rows_in: int | None
    rows_out: int | None
    rows_quarantined: int | None
    error: str | None
    note: str | None

    @property
    def seconds(self) -> float: ...


def describe(rec: StepFacts) -> str:
    """`ok in 4.2 s: 1,000 in, 990 out, 10 quarantined` (counts that were not reported are left out)."""
    counts = [f"{n:,} {label}" for n, label in
              ((rec.rows_in, "in"), (rec.rows_out, "out"), (rec.rows_quarantined, "quarantined")) if n is not None]
    text = f"{rec.status} in {rec.seconds:.1f} s"
    if counts:
        text += ": " + ", ".join(counts)
    reason = rec.error if rec.status == "failed" else rec.note
    return f"{text} ({reason})" if reason else text


class PlainDisplay:
    """One timestamped line per event, for logs."""

    def __init__(self, title: str, steps: Sequence[str], stream: TextIO):
        self.title, self.steps, self.stream = title, list(steps), stream
        self._lock = threading.Lock()

    def __enter__(self) -> PlainDisplay:
        self._line(f"started ({len(self.steps)} steps: {', '.join(self.steps)})")
        return self

    def __exit__(self, *exc) -> None:
        self._line("failed" if exc[0] is not None else "finished")

    def _position(self, name: str) -> str:
        return f"[{self.steps.index(name) + 1}/{len(self.steps)}] " if name in self.steps else ""

    def _line(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:  # steps may run side by side (validate and group): whole lines, never interleaved
            self.stream.write(f"{stamp} {self.title}: {text}\n")
            self.stream.flush()

    def started(self, name: str) -> None:
        self._line(f"{self._position(name)}{name} started")

    def finished(self, rec: StepFacts) -> None:
        self._line(f"{self._position(rec.step)}{rec.step} {describe(rec)}")


class RichDisplay:
    """A live progress line (spinner, current step, steps done of total, elapsed) plus one line per step."""

    MARKS = {"ok": "[green]✓[/]", "skipped": "[yellow]-[/]", "failed": "[red]✗[/]"}

    def __init__(self, title: str, steps: Sequence[str], stream: TextIO):
        self.title, self.steps = title, list(steps)
        self.console = Console(file=stream)
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=self.console, transient=True,
        )
        self.task = None
        self.running: list[str] = []  # steps may run side by side (validate and group)

    def __enter__(self) -> RichDisplay:
        self.progress.start()
        self.task = self.progress.add_task(self.title, total=len(self.steps))
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def started(self, name: str) -> None:
        self.running.append(name)
        self._describe()

    def _describe(self) -> None:
        self.progress.update(self.task, description=f"{self.title}: {', '.join(self.running)}")

    def finished(self, rec: StepFacts) -> None:
        if rec.step in self.running:
            self.running.remove(rec.step)
            self._describe()
        mark = self.MARKS.get(rec.status, "?")
        line = f"{mark} {escape(rec.step):<12} {escape(describe(rec))}"
        self.progress.console.print(line, markup=True, highlight=False)
        self.progress.advance(self.task)


def open_display(title: str, steps: Sequence[str], stream: TextIO | None = None) -> PlainDisplay | RichDisplay:
    """The live display on a terminal, plain log lines otherwise; use as a context manager."""
    stream = stream or sys.stdout
    is_tty = getattr(stream, "isatty", lambda: False)()
    return (RichDisplay if is_tty else PlainDisplay)(title, steps, stream)


StepDisplay = PlainDisplay | RichDisplay
