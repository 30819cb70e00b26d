"""summary.json as one typed object: the counts, per-column findings and provenance of one comparison.

`Summary` is the only thing that writes summary.json (`write`), and what everything else reads:
the reports and the terminal view, validate, query-check and the notebook (`read`/`from_dict`), so
each field is named in one place and a typo is a mypy error, not a KeyError in a user's notebook.

To add a field: declare it below with a default (summary.json files written before it then still
load) and fill it in `build_summary`, or, for what only a later step knows (validate's store
warnings), with `dataclasses.replace` before the outputs are written. `to_dict`/`from_dict` need
no change: they follow the declarations, nested dataclasses, lists, dicts and optionals included.
Keys a reader does not know (a newer writer's, or a section another command adds, such as
query-check's `query_check`) are kept in `extra` and written back at the top level.

The heavy modules (plan, tally, inputs) are imported for type checking only, so reading a summary
loads no engine.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union, get_args, get_origin, get_type_hints

from milvusdiff.compare.options import CompareOptions
from milvusdiff.compare.tolerance import Tolerance

if TYPE_CHECKING:
    from milvusdiff.compare.histogram import DeviationHistogram
    from milvusdiff.compare.inputs import Side
    from milvusdiff.compare.plan import Plan
    from milvusdiff.compare.tally import Tally

SUMMARY_FILE = "summary.json"
VERDICTS = ("a_wrong", "b_wrong", "both_wrong", "in_doubt", "unknown")
DIFFERENCE_CLASSES = ("only_a", "only_b", "changed", "duplicate_a", "duplicate_b")
_STORES = {"milvus": "milvus", "pg": "pg", "postgres": "pg", "postgresql": "pg"}
_SECRET = re.compile(r"password|passwd|token|secret|api_key|credential", re.IGNORECASE)
_USERINFO = re.compile(r"(\w+://[^/@:\s]*):[^/@\s]*@")

T = TypeVar("T")


@dataclass(frozen=True)
class DeviationBin:
    low: float
    high: float
    count: int


@dataclass(frozen=True)
class Deviations:
    """How far a column's differing values are apart, on histogram.py's fixed logarithmic bins: the span from
    the first to the last non-empty bin, and the rows no bin can place (deviation 0, NaN or null on one side)."""

    bins: list[DeviationBin] = field(default_factory=list)
    zero: int = 0
    nan: int = 0

    @property
    def total(self) -> int:
        return sum(b.count for b in self.bins) + self.zero + self.nan


@dataclass(frozen=True)
class ColumnFinding:
    """One compared column pair (named by its A-side name in `Summary.columns`)."""

    b_name: str
    kind: str
    mismatches: int
    max_deviation: float | None = None
    deviations: Deviations | None = None  # None when the column has no mismatches


@dataclass(frozen=True)
class Tolerances:
    default: Tolerance = field(default_factory=Tolerance)
    per_column: dict[str, Tolerance] = field(default_factory=dict)


@dataclass(frozen=True)
class Sides:
    """The store each input holds ('milvus', 'pg') when the manifests say so, else 'A' and 'B'."""

    a: str = "A"
    b: str = "B"

    def of(self, side: str) -> str:
        return self.a if side == "a" else self.b


@dataclass(frozen=True)
class InputSide:
    path: str
    files: int
    source: str | None = None
    key: list[str] | None = None
    manifest: dict[str, Any] | None = None


@dataclass(frozen=True)
class Inputs:
    a: InputSide
    b: InputSide
    journal: str | None = None

    def of(self, side: str) -> InputSide:
        return self.a if side == "a" else self.b


@dataclass(frozen=True)
class Staged:
    """How a staged compare of two bucketed snapshots went (compare/staged): None when it did not apply."""

    buckets: int
    settled: int  # decided from the manifests alone
    examined: int  # key + digest joined
    candidate_keys: int  # keys whose full rows were read and compared
    rows_read_a: int
    rows_read_b: int
    jobs: int = 1
    seconds: float = 0.0


@dataclass(frozen=True)
class Summary:
    """What one comparison found. Counts are of keys; `unchanged` is None when unknown (max_diffs hit)."""

    rows_a: int
    rows_b: int
    only_a: int
    only_b: int
    changed: int
    unchanged: int | None
    duplicate_a: int
    duplicate_b: int
    different: bool
    key: list[str]
    inputs: Inputs
    lower_bound: bool = False
    max_diffs: int | None = None
    # validate: keys on which both sides agree but not with the journal (verdict both_wrong); None: not checked
    against_journal: int | None = None
    columns: dict[str, ColumnFinding] = field(default_factory=dict)
    columns_only_a: list[str] = field(default_factory=list)
    columns_only_b: list[str] = field(default_factory=list)
    columns_incomparable: dict[str, str] = field(default_factory=dict)  # A name -> "type A vs type B"
    columns_ignored: list[str] = field(default_factory=list)
    tolerances: Tolerances = field(default_factory=Tolerances)
    verdicts: dict[str, int] | None = None  # journal arbitration: keys per verdict; None without a journal
    verdict_labels: dict[str, str] = field(default_factory=dict)
    sides: Sides = field(default_factory=Sides)
    engine: str = "duckdb"
    elapsed_seconds: float = 0.0
    # What the rows alone cannot show (validate): a store contradicting itself, journal keys IN_DOUBT.
    store_warnings: list[str] = field(default_factory=list)
    staged: Staged | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def differences(self) -> int:
        """Differing keys, all classes together (a lower bound when `lower_bound`)."""
        return sum(getattr(self, name) for name in DIFFERENCE_CLASSES) + (self.against_journal or 0)

    @property
    def exit_code(self) -> int:
        """As diff(1): 0 when the inputs hold the same data, 1 when they differ, or when they agree row for
        row but a store raised warnings (count(*) against the rows read, duplicate keys, IN_DOUBT writes)."""
        return 1 if self.different or self.store_warnings else 0

    def to_dict(self) -> dict[str, Any]:
        """The summary.json document: plain JSON types, `extra` merged at the top level."""
        data = dataclasses.asdict(self)
        extra = data.pop("extra")
        return {**data, **extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        return _build(cls, data, keep_unknown=True)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"

    def write(self, directory: Path) -> Path:
        path = directory / SUMMARY_FILE
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: str | Path) -> Summary:
        """A summary.json file, or the output directory holding one."""
        path = Path(path)
        path = path / SUMMARY_FILE if path.is_dir() else path
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def relocated(self, old: str, new: str) -> Summary:
        """The same summary with every path under `old` named under `new`: outputs built in a staging
        directory name their inputs where they end up, decided before anything is written."""
        text = json.dumps(self.to_dict(), default=str)
        return Summary.from_dict(json.loads(text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])))


def _convert(hint: Any, value: Any) -> Any:
    """A JSON value as the declared type: dataclasses built, containers converted item by item."""
    if value is None:
        return None
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(hint) if arg is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value, keep_unknown=False)
    if origin is dict:
        _, item = get_args(hint)
        return {k: _convert(item, v) for k, v in value.items()}
    if origin is list:
        (item,) = get_args(hint)
        return [_convert(item, v) for v in value]
    return value


def _build(cls: type[T], data: dict[str, Any], *, keep_unknown: bool) -> T:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {name: _convert(hints[name], value) for name, value in data.items() if name in names}
    if keep_unknown:
        values["extra"] = {name: value for name, value in data.items() if name not in names}
    return cls(**values)


def side_names(side_a: Side, side_b: Side) -> Sides:
    """'milvus' and 'pg' when the manifests say so (and they differ), else 'A' and 'B'."""
    store_a, store_b = _STORES.get(side_a.source or ""), _STORES.get(side_b.source or "")
    if store_a and store_b and store_a != store_b:
        return Sides(store_a, store_b)
    return Sides()


def verdict_labels(sides: Sides) -> dict[str, str]:
    return {
        "a_wrong": f"{sides.a} wrong",
        "b_wrong": f"{sides.b} wrong",
        "both_wrong": "both wrong",
        "in_doubt": "in doubt",
        "unknown": "unknown",
    }


def _scrub(value: Any) -> Any:
    """Manifests should hold no credentials; make sure none reaches a report."""
    if isinstance(value, dict):
        return {k: "[redacted]" if _SECRET.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return _USERINFO.sub(r"\1:[redacted]@", value)
    return value


def _input(side: Side) -> InputSide:
    return InputSide(
        path=str(side.path),
        files=len(side.files),
        source=side.source,
        key=list(side.key) if side.key else None,
        manifest=_scrub(side.manifest),
    )


def _deviations(mismatches: int, histogram: DeviationHistogram) -> Deviations | None:
    """For every column with mismatches (the report accounts for each differing row); None for the others."""
    if not mismatches:
        return None
    bins = [DeviationBin(low, high, count) for low, high, count in histogram.drawn()]
    return Deviations(bins, histogram.zero, histogram.nan)


def build_summary(
    side_a: Side,
    side_b: Side,
    plan: Plan,
    tally: Tally,
    options: CompareOptions,
    verdicts: dict[str, int] | None,
    elapsed: float,
) -> Summary:
    lower_bound = options.max_diffs is not None and tally.written >= options.max_diffs
    only_a, only_b, changed = (tally.classes.get(name, 0) for name in ("only_a", "only_b", "changed"))
    unchanged = None if lower_bound else side_a.rows - tally.duplicate_rows_a - only_a - changed
    sides = side_names(side_a, side_b)
    return Summary(
        rows_a=side_a.rows,
        rows_b=side_b.rows,
        only_a=only_a,
        only_b=only_b,
        changed=changed,
        unchanged=unchanged,
        duplicate_a=tally.duplicate_keys_a,
        duplicate_b=tally.duplicate_keys_b,
        different=bool(tally.written or plan.schema_differs),
        lower_bound=lower_bound,
        max_diffs=options.max_diffs,
        against_journal=tally.against_journal,
        key=plan.key_names,
        columns={
            c.name: ColumnFinding(
                b_name=c.b_name,
                kind=c.kind.value,
                mismatches=tally.columns[c.name].mismatches,
                max_deviation=tally.columns[c.name].max_deviation,
                deviations=_deviations(tally.columns[c.name].mismatches, tally.columns[c.name].histogram),
            )
            for c in plan.columns
        },
        columns_only_a=list(plan.columns_only_a),
        columns_only_b=list(plan.columns_only_b),
        columns_incomparable=dict(plan.incomparable),
        columns_ignored=list(plan.ignored),
        tolerances=Tolerances(options.tolerance, dict(options.column_tolerance)),
        verdicts=verdicts,
        verdict_labels=verdict_labels(sides),
        sides=sides,
        inputs=Inputs(_input(side_a), _input(side_b), str(options.journal) if options.journal else None),
        engine=options.engine,
        elapsed_seconds=round(elapsed, 3),
    )
