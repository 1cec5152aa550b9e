"""Does the plugin catch regressions on a real project's suite?  Run by hand (not part of the test suite):

    python benchmarks/recall.py [--suite boltons] [--suite dateutil] [--sdists DIR] [--work DIR]
                                [--hashseed N] [--tolerance TOLERANCE] [--clean 2] [--only ID ...]
                                [--out recall.md] [--json recall.json]

A budget that never fails has no false failures and catches nothing, so the repeatability figures mean something
only beside these.  For each suite, a table below lists small regressions of the kind the plugin exists for, each a
precise source edit that keeps the project's behaviour: a defensive copy of an argument, a string built for a log
line nobody reads, a temporary list where a generator did, an encode/decode round trip, a dict copy, a ``sorted()``
of something already ordered, a ``copy.copy``.  They are spread over modules, in functions that the suite's
measured tests call (``--alloc-all`` leaves ``unittest.TestCase`` tests unmeasured, so a function only those call
would tell nothing), and they differ in size: some add one allocation to a test, some one per item of a loop.

Per suite, in a work directory (a temporary one unless ``--work`` is given):

1. a fresh venv with the Python this script runs under, and in it this plugin from the repository
   (``pip install -e``), pytest-xdist, pytest-randomly, the suite's test requirements, and the project, editable,
   from its unpacked sdist (taken from ``--sdists`` when the file is there, else ``pip download``), so that the
   edits made to the unpacked tree are what the tests import.  With ``--work``, a venv that an earlier run left
   complete is reused; the sdist is unpacked afresh every time;
2. for each selection of test files that a regression names (the table shows it), one recording run on the clean
   source, ``--alloc-update --alloc-update-in-ci -p no:randomly``, into a budget file of its own;
3. ``--clean`` check runs (2) of every selection on the clean source, ``-p no:randomly``, serial: any budget
   failure there is a false failure;
4. per regression: the edit applied (its original snippet must occur exactly once in the file, and the edited file
   must compile: the whole table is checked before any run), one check run of its selection, the file restored byte
   for byte.

Every run is given ``--alloc-all``, ``-p no:cacheprovider``, ``-o alloc_budget_strict=false``, a JSON report and
``--alloc-tolerance`` when ``--tolerance`` is given (no tolerance option otherwise: the default tolerance).  The CI
variables are removed from the runs' environment, bytecode is not written (``PYTHONDONTWRITEBYTECODE=1``) and
``PYTHONHASHSEED`` is left as it is unless ``--hashseed`` is given.  A small plugin module outside the project (``-p``)
records which tests failed in any phase and which of the project's files the run imported: a regression's edited file
must be among them (so the edit was live), and a test that failed when the JSON report does not say it failed its
budget failed as a test, which means the edit changed behaviour (tests that fail on the clean source too are left
out of that).

A regression is caught when a test failed its budget (the JSON report's status) that failed no clean check, on a
metric that measured the same in every clean run of the selection and more with the edit: a metric that wanders (a
test that polls a socket, say) fails its budget now and then with or without the edit, so such failures are counted
apart, as not attributed.  Whatever the verdict, the effect is given: the tests whose numbers moved, over the (test,
metric) pairs that measured the same in every clean run, and per metric the rise that used up the largest share of
its test's tolerance, beside that tolerance, which says by how much a missed regression fell short.

``--option`` adds a pytest option to every run, recording included (``--option=--alloc-from-start``);
``--only ID`` runs only those regressions (repeatable); ``--tolerance`` compares an alternative, such as
``'allocations: 0%, 1'`` (the metrics it does not name keep their default).  The tables are printed as Markdown and
written to ``--out``; ``--json`` writes every number.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from repeatability import METRICS, REPO, check, environment, load, name, pytest_command, run, unpack

Key = tuple[str, Optional[str]]  # a node id and a region, or None for the whole test
Results = dict[Key, dict[str, Any]]


@dataclass(frozen=True)
class Regression:
    """One edit: ``original`` occurs exactly once in ``path`` (relative to the unpacked sdist) and becomes
    ``replacement``; ``tests`` is the selection its check runs (the suite's default when empty)."""

    ident: str
    path: str
    function: str
    kind: str
    description: str
    original: str
    replacement: str
    tests: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suite:
    name: str
    requirement: str
    sdist: str  # the file name in --sdists
    tests: tuple[str, ...]  # the default selection
    requirements: tuple[str, ...]  # what the suite's tests need besides pytest
    regressions: tuple[Regression, ...]
    note: str = ""
    env: dict[str, str] = field(default_factory=dict)  # {work} is replaced by the work directory

    def selection(self, regression: Regression) -> tuple[str, ...]:
        return regression.tests or self.tests


LOG = "log string"
COPY = "defensive copy"
TEMP = "temporary list"
ROUND = "encode/decode"
DICT = "dict copy"
SORT = "sorted again"
JOIN = "join over a copy"

BOLTONS = Suite(
    name="boltons",
    requirement="boltons==26.2.0",
    sdist="boltons-26.2.0.tar.gz",
    tests=("tests",),
    requirements=(),
    note="the whole suite, `tests`, for every run (it takes a few seconds)",
    regressions=(
        Regression(
            "b01",
            "boltons/urlutils.py",
            "urlutils.parse_qsl",
            LOG,
            "a debug string built for every key=value pair of a query string",
            "        key, _, value = pair.partition('=')\n",
            "        key, _, value = pair.partition('=')\n        _ = f'query pair {pair!r}'\n",
        ),
        Regression(
            "b02",
            "boltons/urlutils.py",
            "urlutils.quote_path_part",
            ROUND,
            "the path segment encoded to UTF-8 and decoded back before it is normalised",
            "        bytestr = normalize('NFC', to_unicode(text)).encode('utf8')\n"
            "        return ''.join([_PATH_PART_QUOTE_MAP[b] for b in bytestr])\n",
            "        bytestr = normalize('NFC', to_unicode(text).encode('utf8').decode('utf8')).encode('utf8')\n"
            "        return ''.join([_PATH_PART_QUOTE_MAP[b] for b in bytestr])\n",
        ),
        Regression(
            "b03",
            "boltons/urlutils.py",
            "urlutils.URL.to_text",
            COPY,
            "the path parts copied to a list before they are quoted",
            "        path = '/'.join([quote_path_part(p, full_quote=full_quote)\n"
            "                          for p in self.path_parts])\n",
            "        path = '/'.join([quote_path_part(p, full_quote=full_quote)\n"
            "                          for p in list(self.path_parts)])\n",
        ),
        Regression(
            "b04",
            "boltons/dictutils.py",
            "dictutils.OrderedMultiDict.update_extend",
            COPY,
            "an iterable of pairs copied to a list before it is added",
            "        else:\n            iterator = E\n\n        self_add = self.add\n",
            "        else:\n            iterator = list(E)\n\n        self_add = self.add\n",
        ),
        Regression(
            "b05",
            "boltons/dictutils.py",
            "dictutils.OrderedMultiDict.iteritems",
            TEMP,
            "the keys gathered in a list before the last value of each is looked up",
            "            for key in self.iterkeys():\n                yield key, self[key]\n",
            "            for key in list(self.iterkeys()):\n                yield key, self[key]\n",
        ),
        Regression(
            "b06",
            "boltons/dictutils.py",
            "dictutils.OrderedMultiDict.__new__",
            LOG,
            "a debug string with the class name for every new OrderedMultiDict",
            "        ret = super().__new__(cls)\n        ret._clear_ll()\n",
            "        ret = super().__new__(cls)\n"
            "        _ = f'new {cls.__name__} at {id(ret):#x}'\n"
            "        ret._clear_ll()\n",
        ),
        Regression(
            "b07",
            "boltons/iterutils.py",
            "iterutils.default_exit",
            TEMP,
            "a mapping's new items gathered in a list before update()",
            "    if isinstance(new_parent, Mapping):\n        new_parent.update(new_items)\n",
            "    if isinstance(new_parent, Mapping):\n        new_parent.update(list(new_items))\n",
        ),
        Regression(
            "b08",
            "boltons/iterutils.py",
            "iterutils.default_enter",
            COPY,
            "a sequence copied to a list before remap() walks it",
            "    elif isinstance(value, Sequence):\n        return value.__class__(), enumerate(value)\n",
            "    elif isinstance(value, Sequence):\n        return value.__class__(), enumerate(list(value))\n",
        ),
        Regression(
            "b09",
            "boltons/iterutils.py",
            "iterutils.chunked_iter",
            LOG,
            "a debug string with the size of every chunk",
            "        lc = len(cur_chunk)\n",
            "        lc = len(cur_chunk)\n        _ = f'chunk of {lc} items'\n",
        ),
        Regression(
            "b10",
            "boltons/dictutils.py",
            "dictutils.FrozenDict.updated",
            "copy.copy",
            "the copy of the frozen dict copied again with copy.copy (imported in the function)",
            "        data = dict(self)\n        data.update(*a, **kw)\n",
            "        import copy\n        data = copy.copy(dict(self))\n        data.update(*a, **kw)\n",
        ),
        Regression(
            "b11",
            "boltons/strutils.py",
            "strutils.indent",
            JOIN,
            "the indented lines copied before they are joined",
            "    return newline.join(indented_lines)\n\n\ndef is_uuid",
            "    return newline.join(list(indented_lines))\n\n\ndef is_uuid",
        ),
        Regression(
            "b12",
            "boltons/strutils.py",
            "strutils.format_int_list",
            SORT,
            "the integers sorted, and the sorted list sorted again",
            "    for x in sorted(int_list):\n",
            "    for x in sorted(sorted(int_list)):\n",
        ),
        Regression(
            "b13",
            "boltons/strutils.py",
            "strutils.parse_int_list",
            ROUND,
            "every comma-separated item encoded and decoded back",
            "    for x in range_string.strip().split(delim):\n\n",
            "    for x in range_string.strip().split(delim):\n        x = x.encode('utf-8').decode('utf-8')\n\n",
        ),
        Regression(
            "b14",
            "boltons/strutils.py",
            "strutils.bytes2human",
            SORT,
            "the table of size ranges, already in ascending order, sorted on every call",
            "    for (size, symbol), (next_size, next_symbol) in _SIZE_RANGES:\n",
            "    for (size, symbol), (next_size, next_symbol) in sorted(_SIZE_RANGES):\n",
        ),
        Regression(
            "b15",
            "boltons/tableutils.py",
            "tableutils.Table._fill",
            COPY,
            "the rows copied to a list before they are padded",
            "        for d in self._data:\n            rem = width - len(d)\n",
            "        for d in list(self._data):\n            rem = width - len(d)\n",
        ),
        Regression(
            "b16",
            "boltons/tableutils.py",
            "tableutils.Table.to_text",
            COPY,
            "every row of cells copied before it is centred",
            "        for row in text_data:\n            lines.append(' | '.join([cell.center(widths[j])\n"
            "                                     for j, cell in enumerate(row)]))\n",
            "        for row in text_data:\n            lines.append(' | '.join([cell.center(widths[j])\n"
            "                                     for j, cell in enumerate(list(row))]))\n",
        ),
        Regression(
            "b17",
            "boltons/setutils.py",
            "setutils.IndexedSet.update",
            COPY,
            "the iterable copied to a list before its items are added",
            "            other = chain.from_iterable(others)\n        for o in other:\n",
            "            other = chain.from_iterable(others)\n        for o in list(other):\n",
        ),
        Regression(
            "b18",
            "boltons/setutils.py",
            "setutils.IndexedSet.add",
            LOG,
            "a debug string with the item for every add",
            '        "add(item) -> add item to the set"\n',
            "        \"add(item) -> add item to the set\"\n        _ = f'add {item!r}'\n",
        ),
        Regression(
            "b19",
            "boltons/setutils.py",
            "setutils.IndexedSet.difference",
            TEMP,
            "the new set built from a list where a generator did",
            "            return self.from_iterable(k for k in self if k not in other)\n",
            "            return self.from_iterable([k for k in self if k not in other])\n",
        ),
        Regression(
            "b20",
            "boltons/cacheutils.py",
            "cacheutils.LRI.__setitem__",
            LOG,
            "a debug string with the key for every insertion",
            "    def __setitem__(self, key, value):\n        with self._lock:\n            try:\n"
            "                link = self._get_link_and_move_to_front_of_ll(key)\n",
            "    def __setitem__(self, key, value):\n"
            "        _ = f'set {key!r}'\n"
            "        with self._lock:\n"
            "            try:\n"
            "                link = self._get_link_and_move_to_front_of_ll(key)\n",
        ),
        Regression(
            "b21",
            "boltons/cacheutils.py",
            "cacheutils.make_cache_key",
            DICT,
            "the keyword arguments copied to a dict before they are sorted",
            "        sorted_items = sorted(kwargs.items())\n",
            "        sorted_items = sorted(dict(kwargs).items())\n",
        ),
        Regression(
            "b22",
            "boltons/statsutils.py",
            "statsutils.Stats._get_pow_diffs",
            COPY,
            "the data copied to a list before the differences are taken",
            "        return [(v - m) ** power for v in self.data]\n",
            "        return [(v - m) ** power for v in list(self.data)]\n",
        ),
        Regression(
            "b23",
            "boltons/timeutils.py",
            "timeutils.daterange",
            LOG,
            "a debug string with every date yielded",
            "    while not finished(now, stop):\n        yield now\n",
            "    while not finished(now, stop):\n        _ = f'yielding {now!r}'\n        yield now\n",
        ),
        Regression(
            "b24",
            "boltons/timeutils.py",
            "timeutils.isoparse",
            COPY,
            "the parsed fields copied to a second list",
            "    dt_args = [int(p) for p in parts]\n",
            "    dt_args = list([int(p) for p in parts])\n",
        ),
        Regression(
            "b25",
            "boltons/tbutils.py",
            "tbutils.ParsedException.from_string",
            COPY,
            "the traceback's lines copied to a second list",
            "        tb_lines = tb_str.lstrip().splitlines()\n",
            "        tb_lines = list(tb_str.lstrip().splitlines())\n",
        ),
        Regression(
            "b26",
            "boltons/funcutils.py",
            "funcutils.FunctionBuilder.get_sig_str",
            DICT,
            "the annotations copied to a dict before the signature is formatted",
            "        if with_annotations:\n            annotations = self.annotations\n",
            "        if with_annotations:\n            annotations = dict(self.annotations)\n",
        ),
        Regression(
            "b27",
            "boltons/jsonutils.py",
            "jsonutils.reverse_iter_lines",
            COPY,
            "every block's lines copied to a second list",
            "        lines = buff.splitlines()\n",
            "        lines = list(buff.splitlines())\n",
        ),
        Regression(
            "b28",
            "boltons/mathutils.py",
            "mathutils.Bits.__init__",
            ROUND,
            "a string of bits encoded to ASCII and decoded back",
            "            if type(val) is str:\n                if len_ is None:\n",
            "            if type(val) is str:\n                val = val.encode('ascii').decode('ascii')\n"
            "                if len_ is None:\n",
        ),
    ),
)

DATEUTIL = Suite(
    name="dateutil",
    requirement="python-dateutil==4.0.0",
    sdist="python_dateutil-4.0.0.tar.gz",
    tests=("tests",),
    # The test requirements of its requirements-dev.txt (pytest-cov only for the marker its conftest adds).
    requirements=("pytest-cov", "freezegun", "hypothesis", "attrs"),
    env={"HYPOTHESIS_STORAGE_DIRECTORY": "{work}/hypothesis"},
    note="for each regression the test file of the module it edits (the whole suite takes over a minute a run)",
    regressions=(
        Regression(
            "d01",
            "src/dateutil/parser/_parser.py",
            "parser._timelex.__init__",
            ROUND,
            "the string to parse encoded to UTF-8 and decoded back before it is tokenised",
            "            instream = StringIO(instream)\n",
            "            instream = StringIO(instream.encode('utf-8', 'surrogatepass')"
            ".decode('utf-8', 'surrogatepass'))\n",
            ("tests/test_parser.py",),
        ),
        Regression(
            "d02",
            "src/dateutil/parser/_parser.py",
            "parser._timelex.get_token",
            LOG,
            "a debug string with every token",
            "\n        return token\n\n    def __iter__(self):\n",
            "\n        _ = f'token {token!r}'\n        return token\n\n    def __iter__(self):\n",
            ("tests/test_parser.py",),
        ),
        Regression(
            "d03",
            "src/dateutil/parser/_parser.py",
            "parser._timelex.split",
            COPY,
            "the list of tokens copied before it is returned",
            "        return list(cls(s))\n",
            "        return list(cls(s))[:]\n",
            ("tests/test_parser.py",),
        ),
        Regression(
            "d04",
            "src/dateutil/parser/_parser.py",
            "parser._resultbase.__len__",
            TEMP,
            "sum() over a list of the fields set where a generator did",
            "        return (sum(getattr(self, attr) is not None\n                    for attr in self.__slots__))\n",
            "        return (sum([getattr(self, attr) is not None\n                    for attr in self.__slots__]))\n",
            ("tests/test_parser.py",),
        ),
        Regression(
            "d05",
            "src/dateutil/parser/_parser.py",
            "parser.parserinfo.jump",
            DICT,
            "the table of skippable words copied for every token looked up in it",
            "        return name.lower() in self._jump\n",
            "        return name.lower() in dict(self._jump)\n",
            ("tests/test_parser.py",),
        ),
        Regression(
            "d06",
            "src/dateutil/parser/_parser.py",
            "parser._ymd.append",
            LOG,
            "a debug string with every year, month or day value found",
            "        super().append(int(val))\n",
            "        _ = f'ymd value {val!r} ({label})'\n        super().append(int(val))\n",
            ("tests/test_parser.py",),
        ),
        Regression(
            "d07",
            "src/dateutil/parser/_parser.py",
            "parser.parser._build_naive",
            DICT,
            "the replacements copied to a dict before datetime.replace()",
            "        naive = default.replace(**repl)\n",
            "        naive = default.replace(**dict(repl))\n",
            ("tests/test_parser.py",),
        ),
        Regression(
            "d08",
            "src/dateutil/parser/isoparser.py",
            "isoparser._takes_ascii.func",
            ROUND,
            "the ASCII bytes decoded and encoded again",
            "                str_in = str_in.encode('ascii')\n",
            "                str_in = str_in.encode('ascii').decode('ascii').encode('ascii')\n",
            ("tests/test_isoparser.py",),
        ),
        Regression(
            "d09",
            "src/dateutil/parser/isoparser.py",
            "isoparser.isoparser._parse_digits",
            LOG,
            "a debug string with every group of digits",
            "        digits = s[pos : pos + n]\n",
            "        digits = s[pos : pos + n]\n        _ = f'{n} digits at {pos}: {digits!r}'\n",
            ("tests/test_isoparser.py",),
        ),
        Regression(
            "d10",
            "src/dateutil/parser/isoparser.py",
            "isoparser.isoparser.isoparse",
            COPY,
            "the components copied to a list before the datetime is built",
            "        return datetime(*components)\n\n    @_takes_ascii\n",
            "        return datetime(*list(components))\n\n    @_takes_ascii\n",
            ("tests/test_isoparser.py",),
        ),
        Regression(
            "d11",
            "src/dateutil/parser/isoparser.py",
            "isoparser.isoparser._parse_isodate_common",
            COPY,
            "the date components copied before they are returned",
            "        return components, pos + 2\n",
            "        return list(components), pos + 2\n",
            ("tests/test_isoparser.py",),
        ),
        Regression(
            "d12",
            "src/dateutil/parser/isoparser.py",
            "isoparser.isoparser._parse_tzstr",
            SORT,
            "the set of valid lengths sorted into a list on every call",
            "        if len(tzstr) not in {3, 5, 6}:\n",
            "        if len(tzstr) not in sorted({3, 5, 6}):\n",
            ("tests/test_isoparser.py",),
        ),
        Regression(
            "d13",
            "src/dateutil/rrule.py",
            "rrule.rruleset._iter",
            SORT,
            "the exclusion dates, just sorted in place, sorted again into a new list",
            "        self._genitem(exlist, iter(self._exdate))\n",
            "        self._genitem(exlist, iter(sorted(self._exdate)))\n",
            ("tests/test_rrule.py",),
        ),
        Regression(
            "d14",
            "src/dateutil/rrule.py",
            "rrule.rrule._iter",
            LOG,
            "a debug string with every occurrence yielded",
            "                                total += 1\n                                yield res\n",
            "                                total += 1\n"
            "                                _ = f'occurrence {res!r}'\n"
            "                                yield res\n",
            ("tests/test_rrule.py",),
        ),
        Regression(
            "d15",
            "src/dateutil/rrule.py",
            "rrule._iterinfo.ddayset",
            COPY,
            "the day set of a whole year, 365 slots, copied for every day or hour",
            "        dset = [None] * self.yearlen\n        i = datetime.date(year, month, day)",
            "        dset = list([None] * self.yearlen)\n        i = datetime.date(year, month, day)",
            ("tests/test_rrule.py",),
        ),
        Regression(
            "d16",
            "src/dateutil/rrule.py",
            "rrule.rrule._iter",
            COPY,
            "every period's slice of days copied to a list before it is filtered",
            "            filtered = False\n            for i in dayset[start:end]:\n",
            "            filtered = False\n            for i in list(dayset[start:end]):\n",
            ("tests/test_rrule.py",),
        ),
        Regression(
            "d17",
            "src/dateutil/rrule.py",
            "rrule.rruleset._genitem.__lt__",
            LOG,
            "a debug string with both dates of every comparison in the set's heap",
            "        def __lt__(self, other):\n            return self.dt < other.dt\n",
            "        def __lt__(self, other):\n"
            "            _ = f'{self.dt} < {other.dt}'\n"
            "            return self.dt < other.dt\n",
            ("tests/test_rrule.py",),
        ),
        Regression(
            "d18",
            "src/dateutil/tz/_tzfile.py",
            "tz._tzfile.tzfile._find_trans",
            COPY,
            "the list of local transition times copied for every lookup",
            "        lt = self._trans_local[fold]\n",
            "        lt = list(self._trans_local[fold])\n",
            ("tests/test_tz.py",),
        ),
        Regression(
            "d19",
            "src/dateutil/tz/_tzfile.py",
            "tz._tzfile._parse_tz_str",
            TEMP,
            "the start and end rules parsed into a list where a generator did",
            "            start, end = (_parse_dst_start_end(x) for x in start_end_strs)\n",
            "            start, end = [_parse_dst_start_end(x) for x in start_end_strs]\n",
            ("tests/test_tz.py",),
        ),
        Regression(
            "d20",
            "src/dateutil/tz/tz.py",
            "tz.tz.tzical._parse_rfc",
            COPY,
            "the unfolded lines copied to a list before they are read",
            "        for line in lines:\n"
            "            if not line:\n"
            "                continue\n"
            "            name, value = line.split(':', 1)\n",
            "        for line in list(lines):\n"
            "            if not line:\n"
            "                continue\n"
            "            name, value = line.split(':', 1)\n",
            ("tests/test_tz.py",),
        ),
        Regression(
            "d21",
            "src/dateutil/tz/tz.py",
            "tz.tz.tzical._parse_offset",
            ROUND,
            "an offset string encoded and decoded back",
            "    def _parse_offset(self, s):\n        s = s.strip()\n",
            "    def _parse_offset(self, s):\n        s = s.strip().encode().decode()\n",
            ("tests/test_tz.py",),
        ),
        Regression(
            "d22",
            "src/dateutil/tz/tz.py",
            "tz.tz.gettz.__call__",
            LOG,
            "a debug string with the name of every time zone asked for",
            "                rv = self.__instances.get(name, None)\n",
            "                _ = f'gettz({name!r})'\n                rv = self.__instances.get(name, None)\n",
            ("tests/test_tz.py",),
        ),
        Regression(
            "d23",
            "src/dateutil/easter.py",
            "easter.easter",
            LOG,
            "a debug string with the year and method of every call",
            '        raise ValueError("invalid method")\n',
            "        raise ValueError(\"invalid method\")\n    _ = f'easter({year!r}, method={method!r})'\n",
            ("tests/test_easter.py",),
        ),
        Regression(
            "d24",
            "src/dateutil/utils.py",
            "utils.within_delta",
            LOG,
            "a debug string with the delta of every comparison",
            "    delta = abs(delta)\n",
            "    delta = abs(delta)\n    _ = f'within {delta!r}'\n",
            ("tests/test_utils.py",),
        ),
    ),
)

SUITES = {suite.name: suite for suite in (BOLTONS, DATEUTIL)}

# Loaded with -p from outside the project: which tests failed in any phase, and which of the project's files were
# imported, written at the end of the session to the file named by the environment.
OUTCOMES = """
import json
import os
import sys

FAILED = []


def pytest_runtest_logreport(report):
    if report.failed:
        FAILED.append([report.nodeid, report.when])


def pytest_collectreport(report):
    if report.failed:
        FAILED.append([report.nodeid, "collect"])


def pytest_sessionfinish(session):
    source = os.path.realpath(os.environ["ALLOCBUDGET_RECALL_SOURCE"]) + os.sep
    files = sorted(
        os.path.relpath(os.path.realpath(module.__file__), source)
        for module in list(sys.modules.values())
        if getattr(module, "__file__", None) and os.path.realpath(module.__file__).startswith(source)
    )
    with open(os.environ["ALLOCBUDGET_RECALL_OUTCOMES"], "w") as stream:
        json.dump({"failed": FAILED, "imported": files}, stream)
"""


@dataclass
class Run:
    """One pytest run: its JSON report's results, the tests that failed in any phase, the files it imported."""

    label: str
    wall: float
    results: Results
    failed: set[str]
    imported: set[str]

    def budget_failures(self) -> set[str]:
        return {key[0] for key, item in self.results.items() if item["status"] in ("failed", "missing")}

    def test_failures(self) -> set[str]:
        # A budget failure turns the call phase's report into a failure; anything else failed as a test.
        return self.failed - self.budget_failures()


class Runner:
    def __init__(
        self,
        python: Path,
        source: Path,
        work: Path,
        env: dict[str, str],
        tolerance: str | None,
        extra: list[str] | None = None,
    ) -> None:
        self.python, self.source, self.work, self.env = python, source, work, env
        self.options = [f"--alloc-tolerance={tolerance}"] if tolerance is not None else []
        self.options += extra or []
        plugins = work / "plugins"
        plugins.mkdir(exist_ok=True)
        (plugins / "allocbudget_recall_outcomes.py").write_text(OUTCOMES)
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")]))
        self.env["ALLOCBUDGET_RECALL_SOURCE"] = str(source)
        for directory in ("reports", "budgets"):
            (work / directory).mkdir(exist_ok=True)
        self.count = 0

    def budgets(self, selection: tuple[str, ...]) -> Path:
        digest = hashlib.sha1("\0".join(selection).encode()).hexdigest()[:12]
        return self.work / "budgets" / f"{digest}.yaml"

    def __call__(self, label: str, selection: tuple[str, ...], options: list[str]) -> Run:
        self.count += 1
        report = self.work / "reports" / f"{self.count:03d}-{label}.json"
        outcomes = report.with_suffix(".outcomes.json")
        self.env["ALLOCBUDGET_RECALL_OUTCOMES"] = str(outcomes)
        options = [
            *options,
            *self.options,
            "-p",
            "allocbudget_recall_outcomes",
            f"--alloc-json={report}",
            f"--alloc-file={self.budgets(selection)}",
        ]
        command = pytest_command(self.python, selection, options, plugin=True, pristine=True)
        wall = run(command, self.source, self.env, report)
        data = json.loads(outcomes.read_text())
        return Run(label, wall, load(report), {nodeid for nodeid, _ in data["failed"]}, set(data["imported"]))

    def record(self, selection: tuple[str, ...]) -> Run:
        return self("record", selection, ["--alloc-update", "--alloc-update-in-ci", "-p", "no:randomly"])

    def check(self, label: str, selection: tuple[str, ...]) -> Run:
        return self(label, selection, ["-p", "no:randomly"])


def pip(python: Path) -> list[str]:
    return [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]


def prepare(suite: Suite, work: Path, sdists: Path | None, env: dict[str, str]) -> tuple[Path, Path, bool]:
    """The venv's python, the unpacked sdist, and whether the venv was reused."""
    venv = work / "venv"
    python = venv / "bin" / "python"
    ready = venv / ".allocbudget-recall-ready"
    wanted = "\n".join([str(REPO), suite.requirement, *suite.requirements])
    reused = ready.exists() and ready.read_text() == wanted
    if not reused:
        shutil.rmtree(venv, ignore_errors=True)
        check([sys.executable, "-m", "venv", str(venv)], env=env)
        check(
            [*pip(python), "install", "-e", str(REPO), "pytest-xdist", "pytest-randomly", *suite.requirements], env=env
        )
    archive = sdists / suite.sdist if sdists is not None else None
    if archive is None or not archive.exists():
        downloads = work / "sdist"
        shutil.rmtree(downloads, ignore_errors=True)
        check([*pip(python), "download", "--no-deps", "--no-binary", ":all:", suite.requirement, "-d", str(downloads)])
        (archive,) = downloads.iterdir()
    unpacked = work / "src"
    shutil.rmtree(unpacked, ignore_errors=True)
    source = unpack(archive, unpacked)
    if not reused:
        # Editable: the tests import the unpacked tree, so an edit there is what they run.
        check([*pip(python), "install", "-e", str(source)], env=env)
        ready.write_text(wanted)
    return python, source, reused


def validate(suite: Suite, source: Path) -> None:
    """Every edit applies exactly once and leaves a file that compiles; checked before any run."""
    problems = []
    for regression in suite.regressions:
        path = source / regression.path
        if not path.exists():
            problems.append(f"{regression.ident}: {regression.path} does not exist")
            continue
        text = path.read_text()
        count = text.count(regression.original)
        if count != 1:
            problems.append(f"{regression.ident}: the original snippet occurs {count} times in {regression.path}")
            continue
        try:
            compile(text.replace(regression.original, regression.replacement), str(path), "exec")
        except SyntaxError as error:
            problems.append(f"{regression.ident}: the edited {regression.path} does not compile: {error}")
    idents = [regression.ident for regression in suite.regressions]
    if len(set(idents)) != len(idents):
        problems.append("regression ids are not unique")
    if problems:
        raise SystemExit(f"{suite.name}: bad regression table:\n" + "\n".join(problems))


def apply_and_check(runner: Runner, suite: Suite, regression: Regression) -> Run:
    path = runner.source / regression.path
    original = path.read_bytes()
    text = original.decode()
    path.write_text(text.replace(regression.original, regression.replacement))
    try:
        return runner.check(regression.ident, suite.selection(regression))
    finally:
        path.write_bytes(original)
        assert path.read_bytes() == original, f"{path} was not restored"


def over_budget(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        metric: result for metric, result in item["metrics"].items() if result["status"] in ("regressed", "over-limit")
    }


def spread(runs: list[Run]) -> dict[tuple[Key, str], tuple[int, int]]:
    """Per (test, metric), the lowest and highest value measured in these clean runs."""
    found: dict[tuple[Key, str], tuple[int, int]] = {}
    for clean in runs:
        for key, item in clean.results.items():
            for metric, result in item["metrics"].items():
                value = result["measured"]
                low, high = found.get((key, metric), (value, value))
                found[(key, metric)] = (min(low, value), max(high, value))
    return found


def closer(found: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether ``found`` came nearer to its tolerance than ``other``: a larger share of the allowance used up."""
    return bool(found["rise"] * other["allowance"] > other["rise"] * found["allowance"])


def effect(edited: Run, clean: list[Run]) -> dict[str, Any]:
    """What the edit did to the numbers, over the (test, metric) pairs that measured the same in every clean run (the
    others move by themselves, under a random hash seed especially): the tests whose numbers moved, and per metric the
    rise that came nearest to its tolerance (``closest``: the share of the allowance it used up) and the largest."""
    ranges = spread(clean)
    moved: set[Key] = set()
    unsteady: set[Key] = set()
    largest: dict[str, dict[str, Any]] = {}
    closest: dict[str, dict[str, Any]] = {}
    for key, item in edited.results.items():
        for metric, result in item["metrics"].items():
            low, high = ranges.get((key, metric), (None, None))
            if low is None or high is None or result["budget"] is None:
                continue
            if low != high:
                unsteady.add(key)
                continue
            rise = result["measured"] - high
            if rise == 0:
                continue
            moved.add(key)
            if rise < 0:
                continue
            found = {
                "test": name(key),
                "rise": rise,
                "change": result["change"],
                "allowance": result["allowed"] - result["budget"],
            }
            if metric not in largest or rise > largest[metric]["rise"]:
                largest[metric] = found
            if metric not in closest or closer(found, closest[metric]):
                closest[metric] = found
    return {
        "moved": sorted(name(key) for key in moved),
        "unsteady": len(unsteady - moved),
        "largest": largest,
        "closest": closest,
    }


def failure_details(edited: Run, clean: list[Run] | None = None) -> list[dict[str, Any]]:
    """The tests that failed their budget, each metric over budget with its change.  Beside clean runs, a failure is
    ``attributed`` to the edit when the test failed no clean check, and a metric over budget measured the same in
    every clean run and more now: a metric that wanders (a test that polls a socket, say) can fail its budget with or
    without the edit, and such a failure tells nothing about the edit."""
    ranges = spread(clean) if clean else {}
    failed_clean = set().union(*(r.budget_failures() for r in clean if r.label != "record")) if clean else set()
    details = []
    for key, item in sorted(edited.results.items(), key=lambda pair: (pair[0][0], pair[0][1] or "")):
        if item["status"] not in ("failed", "missing"):
            continue
        metrics = {}
        for metric, result in over_budget(item).items():
            low, high = ranges.get((key, metric), (None, None))
            metrics[metric] = {
                "change": result["change"],
                "change_percent": result["change_percent"],
                "budget": result["budget"],
                "allowed": result["allowed"],
                "measured": result["measured"],
                "clean": [low, high],
                "steady_rise": low is not None and low == high and result["measured"] > high,
            }
        attributed = (
            clean is not None
            and key[0] not in failed_clean
            and any(metric["steady_rise"] for metric in metrics.values())
        )
        details.append({"test": name(key), "status": item["status"], "metrics": metrics, "attributed": attributed})
    return details


def size(metric: str, value: int) -> str:
    return f"{value:+,}" if metric == "allocations" else f"{value:+,} B"


def short(test: str) -> str:
    return test.split("::", 1)[-1] if "::" in test else test


def run_suite(suite: Suite, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    env = environment(args.hashseed)
    env.update({key: value.format(work=work) for key, value in suite.env.items()})
    print(f"{suite.name}: preparing a venv with {suite.requirement} in {work} ...", file=sys.stderr)
    python, source, reused = prepare(suite, work, args.sdists, env)
    prepared = time.perf_counter() - started
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # installed as usual; then the tree holds only the edits made to it
    validate(suite, source)
    regressions = [r for r in suite.regressions if not args.only or r.ident in args.only]
    runner = Runner(python, source, work, env, args.tolerance, args.option)
    selections = list(dict.fromkeys(suite.selection(r) for r in regressions))

    clean: dict[tuple[str, ...], list[Run]] = {}
    for selection in selections:
        clean[selection] = [runner.record(selection)]
        for number in range(1, args.clean + 1):
            clean[selection].append(runner.check(f"clean-{number}", selection))
        walls = ", ".join(f"{r.wall:.1f} s" for r in clean[selection])
        print(f"{suite.name}: {' '.join(selection)}: recorded and checked {args.clean}x ({walls})", file=sys.stderr)
    checked = time.perf_counter()
    # A test that fails on the clean source is the suite's own affair, not a regression's doing.
    failing = {selection: set().union(*(r.test_failures() for r in runs)) for selection, runs in clean.items()}

    results = []
    for regression in regressions:
        selection = suite.selection(regression)
        edited = apply_and_check(runner, suite, regression)
        failures = failure_details(edited, clean[selection])
        attributed = [f for f in failures if f["attributed"]]
        broken = sorted(edited.test_failures() - failing[selection])
        moved = effect(edited, clean[selection])
        item: dict[str, Any] = {
            "id": regression.ident,
            "function": regression.function,
            "path": regression.path,
            "kind": regression.kind,
            "description": regression.description,
            "original": regression.original,
            "replacement": regression.replacement,
            "tests": list(selection),
            "caught": bool(attributed),
            "budget_failures": failures,
            "test_failures": broken,
            "behaviour_preserving": not broken,
            "edit_imported": regression.path in edited.imported,
            "effect": moved,
            "wall": edited.wall,
        }
        results.append(item)
        verdict = "caught" if attributed else "missed"
        print(
            f"{suite.name}: {regression.ident} {regression.function}: {verdict}, {len(attributed)} tests over budget "
            f"({len(failures) - len(attributed)} more not attributed), "
            f"{len(moved['moved'])} moved, {len(broken)} failed as tests ({edited.wall:.1f} s)",
            file=sys.stderr,
        )

    versions = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    wanted = {"pytest", "pytest-xdist", "pytest-randomly", suite.requirement.split("==")[0], *suite.requirements}
    return {
        "suite": suite.name,
        "requirement": suite.requirement,
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "hashseed": args.hashseed if args.hashseed is not None else env.get("PYTHONHASHSEED", "random per run"),
        "tolerance": args.tolerance or "default",
        "options": args.option,
        "versions": [v for v in versions if v.split("==")[0].lower() in wanted],
        "venv_reused": reused,
        "note": suite.note,
        "prepare_seconds": prepared,
        "clean_seconds": checked - started - prepared,
        "regression_seconds": time.perf_counter() - checked,
        "seconds": time.perf_counter() - started,
        "clean": [
            {
                "tests": list(selection),
                "runs": [
                    {
                        "label": r.label,
                        "wall": r.wall,
                        "measured": len(r.results),
                        "false_failures": [] if r.label.startswith("record") else failure_details(r),
                        "test_failures": sorted(r.test_failures()),
                    }
                    for r in runs
                ],
            }
            for selection, runs in clean.items()
        ],
        "regressions": results,
    }


def markdown(data: dict[str, Any]) -> list[str]:
    regressions = data["regressions"]
    valid = [r for r in regressions if r["behaviour_preserving"]]
    caught = [r for r in valid if r["caught"]]
    checks = [
        run_ for selection in data["clean"] for run_ in selection["runs"] if not run_["label"].startswith("record")
    ]
    false = sum(len(run_["false_failures"]) for run_ in checks)
    tolerance = data["tolerance"]
    lines = [
        f"### {data['requirement']}",
        "",
        f"Python {data['python']} on {data['platform']}; PYTHONHASHSEED {data['hashseed']}; tolerance "
        + ("default (`2%, 4 KiB` bytes, `2%, 16` allocations)" if tolerance == "default" else f"`{tolerance}`")
        + "".join(f"; `{option}`" for option in data.get("options", []))
        + f"; {', '.join(data['versions'])}.",
        "",
        f"Test selection: {data['note']}. Wall time {data['seconds']:.0f} s: "
        + ("venv reused" if data["venv_reused"] else f"{data['prepare_seconds']:.0f} s preparing the venv")
        + f", {data['clean_seconds']:.0f} s recording and the clean checks, "
        f"{data['regression_seconds']:.0f} s for the regressions (serial runs, on a shared machine).",
        "",
        "A regression is caught when a test failed its budget that failed no clean check, on a metric that measured "
        "the same in every clean run of the selection and more with the edit; budget failures on a metric that "
        "varies between clean runs are counted apart (not attributed), since they happen without the edit too. The "
        "effect is taken over the (test, metric) pairs that measured the same in every clean run; per metric, the "
        "rise shown is the one that used up the largest share of its test's tolerance (the allowance, in brackets).",
        "",
        f"**Caught: {len(caught)} of {len(valid)}"
        + (f" ({100 * len(caught) / len(valid):.0f}%)" if valid else "")
        + f".** False failures in the {len(checks)} clean checks: {false}"
        + (f" ({', '.join(str(len(run_['false_failures'])) for run_ in checks)} per run)" if checks else "")
        + ".",
        "",
    ]
    missed = [r for r in valid if not r["caught"]]
    if missed:

        def shortfall(r: dict[str, Any]) -> str:
            seen = r["effect"]["closest"].get("allocations")
            if seen is None:
                return f"{r['id']} (no steady test's count rose)"
            return f"{r['id']} ({seen['rise']:+,} allocations, {seen['allowance']:,} allowed)"

        lines.append(
            "Missed, with the rise in allocations nearest to its tolerance: " + ", ".join(map(shortfall, missed)) + "."
        )
        lines.append("")
    stray: dict[str, int] = {}
    for r in regressions:
        for f in r["budget_failures"]:
            if not f["attributed"]:
                stray[f["test"]] = stray.get(f["test"], 0) + 1
    if stray:
        lines.append(
            f"Budget failures not attributed to the edit, in the {len(regressions)} regression runs: "
            + ", ".join(f"{test} in {count}" for test, count in sorted(stray.items(), key=lambda pair: -pair[1]))
            + "."
        )
        lines.append("")
    unpreserved = [r for r in regressions if not r["behaviour_preserving"]]
    if unpreserved:
        lines.append(
            "Not behaviour-preserving (tests failed as tests; left out of the share): "
            + "; ".join(f"{r['id']}: {', '.join(r['test_failures'][:3])}" for r in unpreserved)
            + "."
        )
        lines.append("")
    lines.append(
        "| id | function | kind | tests run | failed their budget | over budget: largest change (allowed) "
        "| effect: tests moved; per metric the rise nearest its tolerance (allowed) | caught |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for r in regressions:
        failed = [f for f in r["budget_failures"] if f["attributed"]]
        others = len(r["budget_failures"]) - len(failed)
        names = ", ".join(short(f["test"]) for f in failed[:2]) + (
            f" +{len(failed) - 2} more" if len(failed) > 2 else ""
        )
        worst: dict[str, dict[str, Any]] = {}
        for f in failed:
            for metric, m in f["metrics"].items():
                if metric not in worst or m["change"] > worst[metric]["change"]:
                    worst[metric] = m
        over = "; ".join(
            f"{metric} {size(metric, m['change'])}"
            + (f" {m['change_percent']:+.1f}%" if m["change_percent"] is not None else "")
            + f" ({size(metric, m['allowed'] - m['budget'])})"
            for metric, m in sorted(worst.items(), key=lambda pair: METRICS.index(pair[0]))
        )
        failed_text = f"{len(failed)}: {names}" if failed else "-"
        if others:
            failed_text += f" ({others} more not attributed)"
        seen = r["effect"]["closest"]
        rise = "; ".join(
            f"{metric} {size(metric, seen[metric]['rise'])} ({size(metric, seen[metric]['allowance'])})"
            + (f" in {short(seen[metric]['test'])}" if metric == "allocations" else "")
            for metric in METRICS
            if metric in seen
        )
        moved = len(r["effect"]["moved"])
        rise = f"{moved}: {rise}" if moved else "none"
        if not r["edit_imported"]:
            rise += " (edited file not imported!)"
        verdict = "yes" if r["caught"] else "**no**"
        if not r["behaviour_preserving"]:
            verdict += " (changed behaviour)"
        lines.append(
            f"| {r['id']} | `{r['function']}` | {r['kind']} | {' '.join(r['tests'])} | "
            f"{failed_text} | {over or '-'} | {rise} | {verdict} |"
        )
    lines.append("")
    lines.append("The regressions:")
    lines.append("")
    for r in regressions:
        lines.append(f"- {r['id']} `{r['path']}` `{r['function']}`: {r['description']}.")
    lines.append("")
    lines.append(
        "Clean runs, per selection: wall time, results, budget failures (false failures) and tests failing as "
        "tests on the clean source."
    )
    lines.append("")
    lines.append("| tests | run | wall (s) | measured | false failures | failed as tests |")
    lines.append("|---|---|---|---|---|---|")
    for selection in data["clean"]:
        for run_ in selection["runs"]:
            false_ = run_["false_failures"]
            text = "-" if run_["label"].startswith("record") else str(len(false_))
            if false_:
                text += ": " + ", ".join(
                    f"{f['test']} ("
                    + ", ".join(f"{metric} {size(metric, m['change'])}" for metric, m in f["metrics"].items())
                    + ")"
                    for f in false_
                )
            failing = run_["test_failures"]
            lines.append(
                f"| {' '.join(selection['tests'])} | {run_['label']} | {run_['wall']:.1f} | {run_['measured']} | "
                f"{text} | {len(failing)}{': ' + ', '.join(failing) if failing else ''} |"
            )
    lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="append", choices=sorted(SUITES), help="a suite to run (repeatable; all)")
    parser.add_argument("--sdists", type=Path, default=None, help="a directory holding the suites' sdists")
    parser.add_argument("--work", type=Path, default=None, help="keep the venvs here, one directory per suite")
    parser.add_argument("--hashseed", default=None, help="PYTHONHASHSEED for every run (default: left as it is)")
    parser.add_argument("--tolerance", default=None, help="--alloc-tolerance for every run (default: none given)")
    parser.add_argument(
        "--option", action="append", default=[], help="one more pytest option for every run, such as --alloc-from-start"
    )
    parser.add_argument("--clean", type=int, default=2, help="check runs of each selection on the clean source")
    parser.add_argument("--only", action="append", default=[], metavar="ID", help="only these regressions")
    parser.add_argument("--out", type=Path, default=Path("recall.md"), help="Markdown file for the tables")
    parser.add_argument("--json", type=Path, default=None, help="JSON file for every number")
    args = parser.parse_args()

    suites = [SUITES[name_] for name_ in (args.suite or sorted(SUITES))]
    data = []
    with tempfile.TemporaryDirectory(prefix="allocbudget-recall-") as temporary:
        for suite in suites:
            work = (args.work or Path(temporary)) / suite.name
            work.mkdir(parents=True, exist_ok=True)
            for leftover in ("reports", "budgets", "plugins"):
                shutil.rmtree(work / leftover, ignore_errors=True)
            data.append(run_suite(suite, args, work))
    lines = ["## Regressions caught", ""]
    for item in data:
        lines += markdown(item)
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"argv": sys.argv[1:], "suites": data}, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
