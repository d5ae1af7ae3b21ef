"""The held-out gate for new training examples, and switching the served model.

New examples (the trainer's export, ``nlu_data/data/trainer_labels.yml``) are judged on
sentences neither model trained on: the rest of the data is split once (Rasa's
stratified split, fixed seed), a model is trained on the training part without the new
file ("before") and with it ("after"), and both are tested on the same held-out part.
Adding examples to the split would move sentences between the sides and make the two
numbers incomparable; this way the only difference is the new file.

:func:`compare` lines the two summaries up; the gate passes when intent macro F1 and
every entity's F1 did not drop by more than ``tolerance``. Only then is the model for
the whole data trained and switched in on the running Rasa servers with Rasa's
``PUT /model`` (it loads the new model and replaces the old one in place: no restart).

Every run leaves a :class:`GateRecord` (``<state>/gate/last.json``): both summaries, the
verdict, the model trained on all data after a pass, and the hash of the data it was
trained on. The trainer's console shows it and switches the model in when a trainer
confirms (:mod:`bot.nlu.switch`); ``--switch`` on the command line does so at once.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.files import write_atomically

Summary = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Row:
    metric: str
    before: float
    after: float
    gated: bool  # whether a drop of this metric fails the gate

    @property
    def delta(self) -> float:
        return self.after - self.before


@dataclass(frozen=True, slots=True)
class Comparison:
    rows: tuple[Row, ...]
    tolerance: float

    @property
    def dropped(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.gated and r.delta < -self.tolerance - 1e-9)

    @property
    def passed(self) -> bool:
        return not self.dropped

    def table(self) -> str:
        lines = [f"{'metric':<34}{'before':>9}{'after':>9}{'change':>9}"]
        for r in self.rows:
            mark = "  DROP" if r in self.dropped else ""
            lines.append(f"{r.metric:<34}{r.before:>9.4f}{r.after:>9.4f}{r.delta:>+9.4f}{mark}")
        verdict = "passed" if self.passed else f"FAILED ({', '.join(r.metric for r in self.dropped)} dropped)"
        lines.append(f"gate (no gated metric may drop by more than {self.tolerance}): {verdict}")
        return "\n".join(lines)


def compare(before: Summary, after: Summary, *, tolerance: float = 0.0) -> Comparison:
    """Held-out summaries (:func:`bot.nlu.cli.summarize`) side by side."""
    rows = [
        Row("intent macro F1", before["intent"]["macro_f1"], after["intent"]["macro_f1"], True),
        Row("intent accuracy", before["intent"]["accuracy"], after["intent"]["accuracy"], False),
    ]
    for name in sorted(set(before["entities"]) | set(after["entities"])):
        rows.append(Row(f"entity {name} F1", _f1(before["entities"].get(name)), _f1(after["entities"].get(name)), True))
    per_b, per_a = before["intent"].get("per_intent", {}), after["intent"].get("per_intent", {})
    for name in sorted(set(per_b) | set(per_a)):
        if per_b.get(name) != per_a.get(name):
            rows.append(Row(f"  intent {name} F1", float(per_b.get(name, 0.0)), float(per_a.get(name, 0.0)), False))
    return Comparison(tuple(rows), tolerance)


RECORD_NAME = "last.json"


@dataclass(frozen=True, slots=True)
class GateRecord:
    """One gate run as the console shows it: :func:`compare` of ``before`` and ``after``."""

    at: float
    new: str  # the new examples' file name
    seed: int
    tolerance: float
    before: Mapping[str, Any]  # :func:`bot.nlu.cli.summarize`'s summary, without the new file
    after: Mapping[str, Any]  # ... and with it
    model: str = ""  # the model trained on all data after a pass; empty: none (failed, or not asked for)
    data_hash: str = ""  # :func:`bot.nlu.training.training_hash` of the data ``model`` was trained on
    switched_by: str = ""
    switched_at: float = 0.0
    served: tuple[str, ...] = field(default_factory=tuple)  # the servers that loaded ``model``

    @property
    def comparison(self) -> Comparison:
        return compare(self.before, self.after, tolerance=self.tolerance)

    @property
    def support(self) -> int:
        return int(self.before["intent"]["support"])

    def switched(self, by: str, at: float, served: Sequence[str]) -> GateRecord:
        return replace(self, switched_by=by, switched_at=at, served=tuple(served))


def record_path(state_path: Path) -> Path:
    return state_path / "gate" / RECORD_NAME


def save_record(path: Path, record: GateRecord) -> None:
    """Write ``record`` whole (a reader never sees half of it)."""
    write_atomically(path, json.dumps({**asdict(record), "served": list(record.served)}, ensure_ascii=False, indent=1))


def load_record(path: Path) -> GateRecord | None:
    """The record at ``path``; None when no gate has run.

    Raises:
        ValueError: the file is not a gate record.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    try:
        record = GateRecord(**{**raw, "served": tuple(raw.get("served") or ())})
        compare(record.before, record.after)  # the summaries have the fields it reads
    except (TypeError, KeyError) as exc:
        raise ValueError(f"{path}: not a gate record ({exc})") from None
    return record


def _f1(row: Mapping[str, Any] | None) -> float:
    return float(row["f1"]) if row else 0.0


def base_data(data_dir: Path, new_files: Sequence[Path], into: Path) -> Path:
    """A copy of ``data_dir`` without ``new_files``: what the held-out split is made from."""
    leave_out = {p.resolve() for p in new_files}
    shutil.rmtree(into, ignore_errors=True)
    for path in sorted(data_dir.rglob("*")):
        if path.is_file() and path.resolve() not in leave_out:
            target = into / path.relative_to(data_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return into


def switch_model(url: str, model: Path, timeout_s: float = 300.0) -> None:
    """Have the Rasa server at ``url`` load ``model`` in place of its current one.

    Raises:
        OSError: the server refused or did not answer (it keeps serving the old model).
    """
    body = json.dumps({"model_file": str(model.resolve())}).encode()
    request = urllib.request.Request(
        url.rstrip("/") + "/model", data=body, method="PUT", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            if response.status not in (200, 204):
                raise OSError(f"{url}: PUT /model answered {response.status}")
    except urllib.error.HTTPError as exc:
        raise OSError(f"{url}: PUT /model answered {exc.code}: {exc.read()[:300]!r}") from None


def loaded_model(url: str, timeout_s: float = 5.0) -> str:
    """The model file name the Rasa server at ``url`` serves (``GET /status``)."""
    with urllib.request.urlopen(url.rstrip("/") + "/status", timeout=timeout_s) as response:
        status = json.loads(response.read())
    return Path(str(status.get("model_file", ""))).name
