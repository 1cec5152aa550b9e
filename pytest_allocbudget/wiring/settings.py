"""Every setting, resolved in one place, with errors that say where a bad value came from.

Precedence, highest first: the marker on the test, the command line, the ini file, the built-in default.
"""

from __future__ import annotations

import math
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ..judging.metrics import METRICS
from ..judging.tolerance import Tolerance
from ..judging.units import parse_size
from ..measuring import hashseed

__all__ = [
    "DEFAULT_FILE",
    "DEFAULT_LOCK_TIMEOUT",
    "MARKER",
    "MarkerPlan",
    "RunSettings",
    "SettingsError",
    "parse_marker",
    "parse_tolerances",
    "profile_name",
    "resolve_plan",
    "resolve_run_settings",
]

MARKER = "alloc_budget"
DEFAULT_FILE = "allocbudget.yaml"
DEFAULT_TOLERANCE = "2%, 4 KiB"
#: How long an update run waits, in seconds, for another one writing the same budget file: far longer than a write
#: takes (milliseconds), short enough that a run stuck behind a hung one still ends, with an error.
DEFAULT_LOCK_TIMEOUT = 60.0
MARKER_HELP = (
    f"{MARKER}(enabled=True, *, peak=None, retained=None, allocations=None, allocated=None, tolerance=None, "
    "warmup=None, isolate=None, from_start=None): measure this test's allocations and hold them to the budget "
    "recorded in the budget file (pytest --alloc-update records it); peak=/retained=/allocations=/allocated= add "
    "hard limits (bytes, or '2 MiB'; a count for allocations); "
    "tolerance='5%' or {'peak': '4 KiB'} overrides the tolerance; warmup=True runs the test once unmeasured first; "
    "isolate=True runs it in a fresh Python process, so that its numbers do not depend on the tests before it "
    "from_start=True judges it on a call from the session's start, in a child of a process kept from before the "
    "first test (warmup, isolate and from_start default to --alloc-warmup, --alloc-isolate and --alloc-from-start)."
)


class SettingsError(ValueError):
    """A setting has a bad value; the message names the setting's source."""


def profile_name() -> str:
    """The budget profile of this interpreter, such as ``cpython-3.11`` (``cpython-3.13t`` when free-threaded).

    Object sizes and allocation patterns change between Python versions and implementations, so budgets recorded
    on one cannot be held against another.
    """
    suffix = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
    return f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}{suffix}"


def parse_tolerances(spec: object, source: str) -> dict[str, Tolerance]:
    """Parse a tolerance setting into per-metric tolerances.

    Forms: a single spec (``"5%"``, ``"4 KiB"``, ``"2%, 4 KiB"``, ``0``), which applies to every metric whose unit
    it fits (a spec with a byte size skips count metrics); ``"peak: 5%; retained: 0"`` (ini); or a mapping
    ``{"peak": "5%"}`` (marker).  ``source`` names the setting in errors.
    """
    if isinstance(spec, Mapping):
        return {str(name): _one(name, value, source) for name, value in spec.items()}
    if isinstance(spec, str) and ":" in spec:
        result: dict[str, Tolerance] = {}
        for part in spec.split(";"):
            if not part.strip():
                continue
            name, sep, value = part.partition(":")
            if not sep:
                raise SettingsError(f"{source}: expected 'metric: tolerance' in {part.strip()!r}")
            if name.strip() in result:
                raise SettingsError(f"{source}: {name.strip()} is given twice; give each metric one tolerance")
            result[name.strip()] = _one(name.strip(), value.strip(), source)
        return result
    result = {}
    errors = []
    for metric in METRICS.values():
        try:
            result[metric.name] = Tolerance.parse(spec, metric.unit)
        except ValueError as error:
            errors.append(error)
    if not result:
        raise SettingsError(f"{source}: {errors[0]}")
    return result


def _one(name: object, value: object, source: str) -> Tolerance:
    metric = METRICS.get(str(name))
    if metric is None:
        raise SettingsError(f"{source}: unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
    try:
        return Tolerance.parse(value, metric.unit)
    except ValueError as error:
        raise SettingsError(f"{source}: {name}: {error}") from None


@dataclass(frozen=True)
class MarkerPlan:
    """What the marker asks of one test."""

    limits: Mapping[str, int] = field(default_factory=dict)
    tolerances: Mapping[str, Tolerance] = field(default_factory=dict)
    warmup: bool | None = None  # None: as the run says (--alloc-warmup)
    isolate: bool | None = None  # None: as the run says (--alloc-isolate)
    from_start: bool | None = None  # None: as the run says (--alloc-from-start)


_MARKER_KEYWORDS = ("enabled", "tolerance", "warmup", "isolate", "from_start", *METRICS)
_SWITCHES = ("warmup", "isolate", "from_start")


def parse_marker(marks: Iterable[tuple[tuple[object, ...], Mapping[str, object]]], nodeid: str) -> MarkerPlan | None:
    """Merge a test's ``alloc_budget`` markers (farthest first) into a plan.

    A limit is a promise about the test, so every limit that any marker gives holds: where markers give one metric
    different limits, the lowest applies, and no marker lifts another's (``peak=None`` gives no limit, it does not
    clear one).  Otherwise the closest marker wins argument by argument, as ``get_closest_marker`` has it (the
    decorator nearest the ``def`` over those above it, the function over its class and module): ``enabled``,
    ``tolerance``, ``warmup`` and ``isolate``.  Returns ``None`` when the closest marker says
    ``alloc_budget(False)``.  Raises :class:`SettingsError` naming the test, the argument and the value.
    """
    enabled = True
    kwargs: dict[str, object] = {}
    given_limits: list[tuple[str, object]] = []
    for args, mark_kwargs in marks:
        if len(args) > 1:
            raise SettingsError(
                f"{nodeid}: @pytest.mark.{MARKER} takes at most one positional argument (enabled), got {args!r}"
            )
        if args:
            if not isinstance(args[0], bool):
                raise SettingsError(f"{nodeid}: @pytest.mark.{MARKER}: enabled must be True or False, got {args[0]!r}")
            enabled = args[0]
        for name, value in mark_kwargs.items():
            if name in METRICS:
                given_limits.append((name, value))
            else:
                kwargs[name] = value
        if "enabled" in kwargs:
            value = kwargs.pop("enabled")
            if not isinstance(value, bool):
                raise SettingsError(f"{nodeid}: @pytest.mark.{MARKER}: enabled must be True or False, got {value!r}")
            enabled = value
    if not enabled:
        return None
    limits: dict[str, int] = {}
    tolerances: dict[str, Tolerance] = {}
    switches: dict[str, bool | None] = dict.fromkeys(_SWITCHES)
    where = f"{nodeid}: @pytest.mark.{MARKER}"
    for name, value in given_limits:
        if value is not None:
            limit = _limit(value, METRICS[name].unit, f"{where}: {name}={value!r}")
            limits[name] = min(limit, limits.get(name, limit))
    for name, value in kwargs.items():
        if name in _SWITCHES:
            if value is not None and not isinstance(value, bool):
                raise SettingsError(f"{where}: {name} must be True or False, got {value!r}")
            switches[name] = value
        elif name == "tolerance":
            if value is not None:
                tolerances = parse_tolerances(value, f"{where}: tolerance={value!r}")
        else:
            raise SettingsError(
                f"{where}: unknown argument {name}={value!r}; expected one of {', '.join(_MARKER_KEYWORDS)}"
            )
    return MarkerPlan(limits, tolerances, switches["warmup"], switches["isolate"], switches["from_start"])


def _limit(value: object, unit: str, source: str) -> int:
    try:
        if unit == "bytes":
            return parse_size(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise ValueError(f"expected a whole number >= 0, got {value!r}")
    except ValueError as error:
        raise SettingsError(f"{source}: {error}") from None


@dataclass(frozen=True)
class RunSettings:
    """The settings of one run that do not depend on the test."""

    path: Path
    update: bool
    tolerances: Mapping[str, Tolerance]
    explain: str  # one of EXPLAIN_MODES
    engine: str  # one of ENGINES
    all_threads: bool
    strict: bool
    budget_all: bool
    json_path: Path | None
    warmup: bool = False
    isolate: bool = False
    first_call_only: bool = False  # no second call confirms a budget failure (confirm.py)
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT  # seconds an update run waits for another writer of the file
    hash_seed: str = ""  # "" (the budget file's), "keep", or a seed: see hashseed.py
    from_start: bool = False  # every test measured as a whole is judged on a call from the session's start
    tolerance_given: bool = False  # the tolerance came from the command line or the ini file, not the default


#: rerun: a failing marker-budgeted test runs again to find its lines; trace: tracemalloc runs in every window
#: too, for the lines alive at its end; off: no lines.
EXPLAIN_MODES = ("rerun", "trace", "off")
#: auto: the allocation counter where it is available, else tracemalloc.
ENGINES = ("auto", "counter", "tracemalloc")


def resolve_run_settings(
    option: Callable[[str], Any],
    ini: Callable[[str], Any],
    inipath: Path | None,
    rootdir: Path,
    invocation: Path,
    ci: str | None = None,
) -> RunSettings:
    """Resolve the run's settings: command line over ini over default; errors name where the bad value came from.

    ``option`` and ``ini`` are ``config.getoption`` and ``config.getini``; ``ci`` names the variable that says
    this is a CI run, which turns strict mode on unless the ini file says otherwise.
    """

    def pick(flag: str, key: str, default: str) -> tuple[str, str]:
        if option(flag):
            return str(option(flag)), flag
        if ini(key):
            return str(ini(key)), f"ini option {key} in {inipath}"
        return default, "the default"

    spec, tolerance_source = pick("--alloc-tolerance", "alloc_budget_tolerance", DEFAULT_TOLERANCE)
    tolerances = parse_tolerances(spec, f"{tolerance_source} = {spec!r}")
    explain, source = pick("--alloc-explain", "alloc_budget_explain", "rerun")
    if explain not in EXPLAIN_MODES:
        raise SettingsError(f"{source}: expected one of {', '.join(EXPLAIN_MODES)}, got {explain!r}")
    engine, source = pick("--alloc-engine", "alloc_budget_engine", "auto")
    if engine not in ENGINES:
        raise SettingsError(f"{source}: expected one of {', '.join(ENGINES)}, got {engine!r}")
    text, source = pick("--alloc-lock-timeout", "alloc_budget_lock_timeout", str(DEFAULT_LOCK_TIMEOUT))
    lock_timeout = _seconds(text, source)
    text, source = pick("--alloc-hash-seed", "alloc_budget_hash_seed", "")
    try:
        hash_seed = hashseed.parse(text, source) if text else ""
    except ValueError as error:
        raise SettingsError(str(error)) from None
    path = resolve_path(option("--alloc-file"), ini("alloc_budget_file"), inipath, rootdir, invocation)
    all_threads = bool(option("--alloc-all-threads") or ini("alloc_budget_all_threads"))
    json_option, json_ini = option("--alloc-json"), ini("alloc_budget_json")
    json_path = resolve_path(json_option, json_ini, inipath, rootdir, invocation) if json_option or json_ini else None
    return RunSettings(
        path,
        bool(option("--alloc-update")),
        tolerances,
        explain,
        engine,
        all_threads,
        strict=bool(option("--alloc-strict")) or _strict_from_ini(ini("alloc_budget_strict"), inipath, ci),
        budget_all=bool(option("--alloc-all") or ini("alloc_budget_all")),
        json_path=json_path,
        warmup=bool(option("--alloc-warmup") or ini("alloc_budget_warmup")),
        isolate=bool(option("--alloc-isolate") or ini("alloc_budget_isolate")),
        first_call_only=bool(option("--alloc-first-call-only") or ini("alloc_budget_first_call_only")),
        lock_timeout=lock_timeout,
        hash_seed=hash_seed,
        from_start=bool(option("--alloc-from-start") or ini("alloc_budget_from_start")),
        tolerance_given=tolerance_source != "the default",
    )


def _seconds(text: str, source: str) -> float:
    """A wait in seconds: a finite number >= 0 (0: do not wait)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise SettingsError(f"{source}: expected a number of seconds >= 0, got {text!r}")
    return value


def resolve_plan(plan: MarkerPlan, run: RunSettings) -> MarkerPlan:
    """The marker's ``warmup``, ``isolate`` and ``from_start`` where it gives them, else the run's
    (``--alloc-warmup``, ``--alloc-isolate``, ``--alloc-from-start`` or their ini keys): the marker is closer to
    the test, so it wins."""
    return replace(
        plan,
        warmup=run.warmup if plan.warmup is None else plan.warmup,
        isolate=run.isolate if plan.isolate is None else plan.isolate,
        from_start=run.from_start if plan.from_start is None else plan.from_start,
    )


def _strict_from_ini(value: object, inipath: Path | None, ci: str | None) -> bool:
    """The ini key: true, false, or auto (on in CI)."""
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    if text not in ("", "auto"):
        raise SettingsError(
            f"ini option alloc_budget_strict (in {inipath} or -o): expected true, false or auto, got {text!r}"
        )
    return ci is not None


def resolve_path(option: str | None, ini: str, inipath: Path | None, rootdir: Path, invocation: Path) -> Path:
    """Where a file named by an option lives: the option's value (relative to the invocation directory), else the
    ini key's (relative to the ini file's directory), else ``allocbudget.yaml`` at the rootdir."""
    if option:
        return (invocation / option).resolve()
    if ini:
        base = inipath.parent if inipath is not None else rootdir
        return (base / ini).resolve()
    return (rootdir / DEFAULT_FILE).resolve()
