"""The object behind the ``alloc_budget`` fixture: named regions of a test, each with its own budget entry."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Callable

from ..budgets.store import EntryKey
from ..measuring.measure import Measurement, Region
from .session import Recorded
from .settings import MarkerPlan, SettingsError, parse_marker

__all__ = ["AllocBudget", "RegionContext", "RegionResult"]


class RegionResult:
    """The numbers of one measured region, available once its ``with`` block has ended.

    ``peak`` and ``retained`` are in bytes; ``values`` maps every measured metric to its value, so assertions can
    be written against metrics this class has no attribute for.
    """

    __slots__ = ("_measurement", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._measurement: Measurement | None = None

    @property
    def values(self) -> Mapping[str, int]:
        if self._measurement is None:
            raise RuntimeError(
                f"region {self.name!r} has no numbers yet: read them after its with block has ended normally"
            )
        return self._measurement.values

    def __getitem__(self, metric: str) -> int:
        return self.values[metric]

    @property
    def peak(self) -> int:
        """Highest bytes above the start of the region."""
        return self.values["peak"]

    @property
    def retained(self) -> int:
        """Bytes allocated in the region and still alive at its end, after a full collection."""
        return self.values["retained"]

    def __repr__(self) -> str:
        if self._measurement is None:
            return f"<RegionResult {self.name!r} (not measured)>"
        values = ", ".join(f"{k}={v}" for k, v in self._measurement.values.items())
        return f"<RegionResult {self.name!r} {values}>"


class AllocBudget:
    """Measures named regions of one test: ``with alloc_budget.measure("transform") as m: ...``."""

    def __init__(
        self,
        nodeid: str,
        make_region: Callable[[EntryKey, MarkerPlan], Region],
        sink: Callable[[Recorded], None],
        whole_test: bool,
    ) -> None:
        self._nodeid = nodeid
        self._make_region = make_region
        self._sink = sink
        self._whole_test = whole_test
        self._names: set[str] = set()
        self._active: str | None = None

    def measure(self, name: str, *, tolerance: object = None, **limits: object) -> RegionContext:
        """Measure the ``with`` block as region ``name``, held to its own budget entry.

        Keyword arguments take the marker's: limits per metric (``peak="1 MiB"``) and ``tolerance``.
        """
        where = f"{self._nodeid}: alloc_budget.measure({name!r})"
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where}: a region needs a non-empty name")
        if self._whole_test:
            raise RuntimeError(
                f"{where}: this test is measured as a whole by @pytest.mark.alloc_budget; "
                "remove the marker to budget regions separately (pass tolerance= to measure() instead)"
            )
        if self._active is not None:
            raise RuntimeError(f"{where}: regions cannot nest; region {self._active!r} is still open")
        for argument in ("enabled", "warmup", "isolate"):
            if argument in limits:
                raise ValueError(
                    f"{where}: {argument}= is a marker argument; measure() takes tolerance= and limits per metric"
                )
        if name in self._names:
            raise ValueError(f"{where}: region {name!r} was already measured in this test; names must be unique")
        try:
            plan = parse_marker([((), {"tolerance": tolerance, **limits})], f"{self._nodeid} region {name!r}")
        except SettingsError as error:
            raise ValueError(str(error).replace("@pytest.mark.alloc_budget", "measure()")) from None
        assert plan is not None
        self._names.add(name)
        return RegionContext(self, name, plan)


class RegionContext:
    """The context manager ``measure()`` returns.

    A plain class rather than ``@contextmanager``: the generator machinery would run inside the measured window
    on both sides, and everything there shows up in the region's numbers.
    """

    __slots__ = ("_entered", "_owner", "_plan", "_region", "_result")

    def __init__(self, owner: AllocBudget, name: str, plan: MarkerPlan) -> None:
        self._owner = owner
        self._plan = plan
        self._result = RegionResult(name)
        self._entered = False
        key = (owner._nodeid, name)
        self._region = owner._make_region(key, plan)

    def __enter__(self) -> RegionResult:
        if self._entered:
            raise RuntimeError(
                f"{self._owner._nodeid}: alloc_budget.measure({self._result.name!r}) was entered twice; one "
                "measure() measures one with block (and a name measures once in a test), so measure the second "
                "block under a name of its own"
            )
        self._entered = True
        self._owner._active = self._result.name
        self._region.__enter__()
        return self._result

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._region.__exit__(exc_type, exc, tb)
        self._owner._active = None
        measurement = self._region.measurement
        if measurement is not None:
            self._result._measurement = measurement
            key = (self._owner._nodeid, self._result.name)
            self._owner._sink(Recorded(key, measurement, self._plan))
