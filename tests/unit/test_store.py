"""Unit and property tests of :mod:`pytest_allocbudget.budgets.store`: the budget file's format, reading and writing."""

from __future__ import annotations

import os
import random
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Optional

import pytest
import yaml
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from pytest_allocbudget.budgets import filelock, store
from pytest_allocbudget.budgets.store import HEADER, BudgetFile, BudgetFileError, dump, load, loads, save, update
from pytest_allocbudget.judging.metrics import METRICS

SOURCE = "budgets.yaml"

# ------------------------------------------------------------------------------------------------ strategies

odd_pieces = st.sampled_from(
    [
        "::",
        "[",
        "]",
        "'",
        '"',
        "\\",
        ": ",
        " #",
        "- ",
        "?",
        "{",
        "}",
        ",",
        "&",
        "*",
        "!",
        "|",
        ">",
        "%",
        "@",
        "`",
        "<<",
        "=",
        "~",
        "null",
        "true",
        "no",
        "0x1F",
        "1.5",
        "12",
        "é",
        "日本",
        "😀",
        "\t",
        " ",
        "\n",
        "regions",
        "peak",
    ]
)
node_ids = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(odd_pieces, st.text(max_size=5)), max_size=8).map("".join),
    st.builds(
        "tests/{}.py::{}[{}]".format,
        st.from_regex(r"[a-z_/]{1,20}", fullmatch=True),
        st.from_regex(r"test_[a-z0-9_]{1,20}", fullmatch=True),
        st.text(max_size=20),
    ),
    st.text(min_size=120, max_size=300),  # long keys: YAML switches to explicit '? ' keys past 128 characters
)
regions = st.one_of(st.none(), st.text(max_size=20), odd_pieces)
values = st.dictionaries(
    st.sampled_from(sorted(METRICS)), st.integers(min_value=0, max_value=2**63), min_size=1, max_size=len(METRICS)
)
profile_names = st.one_of(st.sampled_from(["cpython-3.9", "cpython-3.13t", "pypy-3.10"]), st.text(max_size=15))
budget_files = st.builds(
    BudgetFile,
    st.dictionaries(profile_names, st.dictionaries(st.tuples(node_ids, regions), values, max_size=6), max_size=3),
    st.one_of(st.none(), st.integers(min_value=0, max_value=store.MAX_SEED)),
)


def budget(entries: dict[tuple[str, str | None], dict[str, int]], profile: str = "cpython-3.11") -> BudgetFile:
    return BudgetFile({profile: entries})


# ------------------------------------------------------------------------------------------------ dump


@pytest.mark.smoke
def test_dump_layout() -> None:
    budgets = budget(
        {
            ("tests/test_b.py::test_b[x]", None): {"retained": 0, "peak": 7},
            ("tests/test_a.py::test_a", "setup"): {"peak": 5},
            ("tests/test_a.py::test_a", None): {"retained": 0, "peak": 100},
            ("tests/test_a.py::test_a", "body"): {"peak": 50, "retained": 1},
        }
    )
    assert dump(budgets) == HEADER + (
        "version: 1\n"
        "profiles:\n"
        "  cpython-3.11:\n"
        "    tests/test_a.py::test_a:\n"
        "      peak: 100\n"
        "      retained: 0\n"
        "      regions:\n"
        "        body:\n"
        "          peak: 50\n"
        "          retained: 1\n"
        "        setup:\n"
        "          peak: 5\n"
        "    tests/test_b.py::test_b[x]:\n"
        "      peak: 7\n"
        "      retained: 0\n"
    )
    assert loads(dump(budgets)) == budgets


def test_dump_empty() -> None:
    text = dump(BudgetFile())
    assert text.startswith(HEADER)
    assert loads(text) == BudgetFile()
    assert yaml.safe_load(text) == {"version": 1, "profiles": {}}


def test_header_is_comments_only() -> None:
    assert HEADER.endswith("\n")
    assert all(line.startswith("# ") for line in HEADER.splitlines())
    assert "pytest --alloc-update" in HEADER


def test_dump_writes_plain_integers() -> None:
    class Count(int):
        pass

    text = dump(budget({("t", None): {"peak": Count(5)}}))
    assert "peak: 5\n" in text
    assert "!!" not in text  # no Python-specific tags


@given(budget_files)
def test_dump_starts_with_header_and_version_before_profiles(budgets: BudgetFile) -> None:
    text = dump(budgets)
    assert text.startswith(HEADER)
    body = text[len(HEADER) :]
    seed = "" if budgets.hash_seed is None else f"hash_seed: {budgets.hash_seed}\n"
    assert body.startswith(f"version: 1\n{seed}profiles:")
    assert text.index("version: 1") < text.index("profiles")
    assert text.isascii()  # odd characters are escaped, so the bytes are stable everywhere


@given(budget_files)
def test_dump_loads_round_trip(budgets: BudgetFile) -> None:
    assert loads(dump(budgets), source=SOURCE) == budgets


@given(budget_files)
def test_the_fast_reader_and_the_yaml_reader_agree_on_what_dump_writes(budgets: BudgetFile) -> None:
    text = dump(budgets)
    assert store._read_canonical(text) == budgets  # dump's own layout never needs the slow path
    assert store._read_yaml(text, SOURCE) == budgets
    assert yaml.safe_load(text)["version"] == 1  # and it is YAML that any YAML reader takes


@pytest.mark.parametrize(
    "edit",
    [
        lambda text: text.replace("  peak: 5", "  peak: 0x5"),  # refused by both readers, with the same error
        lambda text: text.replace("tests/test_a.py::test_a:", "'tests/test_a.py::test_a':"),
        lambda text: text.replace("      peak: 5\n", "      peak: 5  # hand-written note\n"),
        lambda text: text.replace("version: 1", "version: 1\n# a comment between keys"),
        lambda text: text.replace(
            "    tests/test_a.py::test_a:\n      peak: 5", "    tests/test_a.py::test_a: {peak: 5"
        ),
    ],
)
def test_hand_edited_layouts_are_read_by_yaml_rules(edit: Callable[[str], str]) -> None:
    original = budget({("tests/test_a.py::test_a", None): {"peak": 5, "retained": 1}})
    text = edit(dump(original))
    try:
        expected: BudgetFile | str = store._read_yaml(text, SOURCE)
    except BudgetFileError as error:
        expected = str(error)
    try:
        actual: BudgetFile | str = loads(text, source=SOURCE)
    except BudgetFileError as error:
        actual = str(error)
    assert actual == expected


@given(budget_files, st.randoms(use_true_random=False))
def test_dump_is_deterministic_whatever_the_insertion_order(budgets: BudgetFile, rnd: random.Random) -> None:
    profiles = list(budgets.profiles.items())
    rnd.shuffle(profiles)
    shuffled = BudgetFile(hash_seed=budgets.hash_seed)
    for name, entries in profiles:
        items = list(entries.items())
        rnd.shuffle(items)
        shuffled.profiles[name] = {}
        for key, vals in items:
            metrics = list(vals.items())
            rnd.shuffle(metrics)
            shuffled.profiles[name][key] = dict(metrics)
    assert shuffled == budgets
    assert dump(shuffled) == dump(budgets)


@given(budget_files)
def test_entries_are_in_file_order_and_len_counts_them(budgets: BudgetFile) -> None:
    entries = list(budgets.entries())
    assert len(entries) == len(budgets)
    order = [(profile, key[0], key[1] or "") for profile, key, _ in entries]
    assert order == sorted(order)
    for profile, key, vals in entries:
        assert budgets.get(profile, key) == vals
        assert budgets.profile(profile)[key] == vals


def test_accessors_on_missing_profile_and_key() -> None:
    budgets = budget({("t", None): {"peak": 1}})
    assert budgets.profile("pypy-3.10") == {}
    assert budgets.get("pypy-3.10", ("t", None)) is None
    assert budgets.get("cpython-3.11", ("t", "region")) is None
    assert budgets.get("cpython-3.11", ("t", None)) == {"peak": 1}
    assert len(BudgetFile()) == 0


# ------------------------------------------------------------------------------------------------ save / load


def test_save_then_load(tmp_path: Path) -> None:
    path = tmp_path / "allocbudget.yaml"
    budgets = budget({("t", None): {"peak": 1}, ("t", "r"): {"retained": 2}})
    save(path, budgets)
    assert path.read_text(encoding="utf-8") == dump(budgets)
    assert load(path) == budgets
    assert os.listdir(tmp_path) == ["allocbudget.yaml"]


def test_save_creates_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "allocbudget.yaml"
    save(path, BudgetFile())
    assert load(path) == BudgetFile()


def test_save_uses_unix_newlines(tmp_path: Path) -> None:
    path = tmp_path / "allocbudget.yaml"
    save(path, budget({("t", None): {"peak": 1}}))
    assert b"\r" not in path.read_bytes()


def test_save_keeps_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "allocbudget.yaml"
    path.write_text("version: 1\n")
    path.chmod(0o640)
    save(path, budget({("t", None): {"peak": 1}}))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_save_new_file_follows_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "allocbudget.yaml"
    old = os.umask(0o027)
    try:
        save(path, BudgetFile())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0o666 & ~0o027, not mkstemp's 0o600


def test_save_never_touches_the_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The umask is the whole process's: setting it, even to read it and put it back, races with every other thread
    # that creates a file meanwhile.  The new file's mode must still be what the umask gives.
    def umask(mask: int) -> int:
        raise AssertionError(f"os.umask({mask:#o}) was called")

    new, existing = tmp_path / "new.yaml", tmp_path / "existing.yaml"
    existing.write_text("version: 1\n")
    existing.chmod(0o604)
    old = os.umask(0o027)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(os, "umask", umask)
            save(new, budget({("t", None): {"peak": 1}}))
            save(existing, budget({("t", None): {"peak": 1}}))
    finally:
        os.umask(old)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640
    assert stat.S_IMODE(existing.stat().st_mode) == 0o604
    assert sorted(os.listdir(tmp_path)) == ["existing.yaml", "new.yaml"]  # no temporary file left


def _old_file(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "allocbudget.yaml"
    old = dump(budget({("old", None): {"peak": 1}}))
    path.write_text(old, encoding="utf-8")
    return path, old


def test_save_is_atomic_when_the_rename_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, old = _old_file(tmp_path)

    def failing_replace(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(store.os, "replace", failing_replace)
    with pytest.raises(BudgetFileError) as info:
        save(path, budget({("new", None): {"peak": 2}}))
    assert str(path) in str(info.value)
    assert "Permission denied" in str(info.value)
    assert path.read_text(encoding="utf-8") == old
    assert os.listdir(tmp_path) == ["allocbudget.yaml"]  # the temporary file is gone


def test_save_is_atomic_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, old = _old_file(tmp_path)

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", failing_fsync)
    with pytest.raises(BudgetFileError, match="No space left on device") as info:
        save(path, budget({("new", None): {"peak": 2}}))
    assert str(path) in str(info.value)
    assert path.read_text(encoding="utf-8") == old
    assert os.listdir(tmp_path) == ["allocbudget.yaml"]


def test_save_is_atomic_on_an_unexpected_exception(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, old = _old_file(tmp_path)

    def interrupted(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(path, budget({("new", None): {"peak": 2}}))
    assert path.read_text(encoding="utf-8") == old
    assert os.listdir(tmp_path) == ["allocbudget.yaml"]


def test_save_leaves_the_old_file_when_serialising_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, old = _old_file(tmp_path)

    def failing_dump(*args: object, **kwargs: object) -> str:
        raise yaml.YAMLError("cannot represent")

    monkeypatch.setattr(store, "dump", failing_dump)
    with pytest.raises(yaml.YAMLError):
        save(path, budget({("new", None): {"peak": 2}}))
    assert path.read_text(encoding="utf-8") == old
    assert os.listdir(tmp_path) == ["allocbudget.yaml"]


def test_save_under_a_regular_file_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    path = blocker / "sub" / "allocbudget.yaml"
    with pytest.raises(BudgetFileError) as info:
        save(path, BudgetFile())
    assert str(info.value).startswith(f"cannot write the budget file {path}: ")
    assert blocker.read_text() == "not a directory"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores directory permissions")
def test_save_to_unwritable_directory_names_the_path(tmp_path: Path) -> None:
    directory = tmp_path / "locked"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        path = directory / "allocbudget.yaml"
        with pytest.raises(BudgetFileError) as info:
            save(path, BudgetFile())
        assert str(path) in str(info.value)
        assert "Permission denied" in str(info.value)
        assert os.listdir(directory) == []
    finally:
        directory.chmod(0o700)


def test_load_missing_file_is_empty(tmp_path: Path) -> None:
    budgets = load(tmp_path / "nope.yaml")
    assert budgets == BudgetFile()
    assert len(budgets) == 0


def test_load_unreadable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(BudgetFileError) as info:
        load(tmp_path)  # a directory
    assert str(info.value).startswith(f"cannot read the budget file {tmp_path}: ")


def test_load_non_utf8_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "allocbudget.yaml"
    path.write_bytes(b"version: 1\nprofiles:\n  \xff\xfe: {}\n")
    with pytest.raises(BudgetFileError, match="cannot read the budget file") as info:
        load(path)
    assert str(path) in str(info.value)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "allocbudget.yaml"
    path.write_text("version: 2\n")
    with pytest.raises(BudgetFileError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}:1 at version: unsupported version 2")


# ------------------------------------------------------------------------------------------------ update


def test_update_gives_the_file_as_it_is_now_and_writes_what_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "allocbudget.yaml"
    save(path, budget({("theirs", None): {"peak": 1}}))
    seen: list[BudgetFile] = []

    def change(current: BudgetFile) -> BudgetFile:
        seen.append(current)
        return budget({**current.profile("cpython-3.11"), ("mine", None): {"peak": 2}})

    assert update(path, change, 0) is True
    assert seen == [budget({("theirs", None): {"peak": 1}})]
    assert load(path) == budget({("theirs", None): {"peak": 1}, ("mine", None): {"peak": 2}})


def test_update_with_nothing_to_write_leaves_the_file_alone(tmp_path: Path) -> None:
    path, old = _old_file(tmp_path)
    stamp = 1_000_000_000 * 10**9
    os.utime(path, ns=(stamp, stamp))
    assert update(path, lambda current: None, 0) is False
    assert path.read_text(encoding="utf-8") == old
    assert path.stat().st_mtime_ns == stamp


def test_update_creates_a_missing_file_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "allocbudget.yaml"
    assert update(path, lambda current: budget({("t", None): {"peak": 1}}), 0) is True
    assert load(path) == budget({("t", None): {"peak": 1}})
    lock = [] if sys.platform != "win32" else [".allocbudget.yaml.lock"]  # removed by its holder on POSIX
    assert sorted(os.listdir(path.parent)) == [*lock, "allocbudget.yaml"]


def test_update_refuses_a_file_that_can_no_longer_be_read(tmp_path: Path) -> None:
    path = tmp_path / "allocbudget.yaml"
    path.write_text("version: 1\nprofiles: [\n", encoding="utf-8")

    def change(current: BudgetFile) -> BudgetFile:
        raise AssertionError("called with a file that cannot be read")

    with pytest.raises(BudgetFileError) as info:
        update(path, change, 0)
    message = str(info.value)
    assert message.startswith(
        f"cannot write the budget file {path}: it changed on disk during this run and can no longer be read, so it "
        f"was left as it is: {path}:"
    )
    assert "not valid YAML" in message
    assert path.read_text(encoding="utf-8") == "version: 1\nprofiles: [\n"


def test_update_gives_up_when_another_writer_holds_the_lock(tmp_path: Path) -> None:
    path, old = _old_file(tmp_path)
    lock = tmp_path / ".allocbudget.yaml.lock"
    with filelock.exclusive(lock, 0), pytest.raises(BudgetFileError) as info:
        update(path, lambda current: BudgetFile(), 0)
    assert str(info.value) == (
        f"cannot write the budget file {path}: another process is writing it (it holds the lock {lock}), and still "
        "was after 0 s, so this run's changes were not written. Record again when it has finished, or wait longer "
        "with --alloc-lock-timeout."
    )
    assert path.read_text(encoding="utf-8") == old


def test_update_under_a_regular_file_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    path = blocker / "allocbudget.yaml"
    with pytest.raises(BudgetFileError) as info:
        update(path, lambda current: BudgetFile(), 0)
    assert str(info.value).startswith(f"cannot write the budget file {path}: ")


def test_update_where_the_lock_cannot_be_created_names_the_path_and_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "allocbudget.yaml"
    (tmp_path / ".allocbudget.yaml.lock").mkdir()  # a directory cannot be opened for writing
    with pytest.raises(BudgetFileError) as info:
        update(path, lambda current: BudgetFile(), 0)
    assert str(info.value).startswith(
        f"cannot write the budget file {path}: cannot lock it with {tmp_path / '.allocbudget.yaml.lock'}: "
    )
    assert not path.exists()


# ------------------------------------------------------------------------------------------------ loads: accepted


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_loads_empty_document(text: str) -> None:
    assert loads(text) == BudgetFile()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\n", BudgetFile()),
        ("version: 1\nprofiles:\n", BudgetFile()),
        ("version: 1\nprofiles: {}\n", BudgetFile()),
        ("profiles: {}\nversion: 1\n", BudgetFile()),  # key order does not matter when reading
        ("version: 1\nprofiles:\n  p:\n", BudgetFile({"p": {}})),
        ("version: 1\nprofiles: {p: {t: {peak: 1}}}\n", budget({("t", None): {"peak": 1}}, "p")),
        (
            "version: 1\nprofiles:\n  p:\n    t:\n      regions:\n        r: {retained: 3}\n",
            budget({("t", "r"): {"retained": 3}}, "p"),
        ),
    ],
)
def test_loads_accepts(text: str, expected: BudgetFile) -> None:
    assert loads(text) == expected


# ------------------------------------------------------------------------------------------------ loads: errors


def _error(text: str) -> str:
    with pytest.raises(BudgetFileError) as info:
        loads(text, source=SOURCE)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("version: 1\nprofiles:\n  p: a: b\n", 3),
        ("version: 1\nprofiles:\n  p:\n    t: {peak: 1\n", 5),
        ("version: 1\nprofiles:\n  p:\n\t t: 1\n", 4),
        ("version: 1\n---\nversion: 1\n", 2),  # two documents
    ],
)
def test_loads_invalid_yaml_names_source_and_line(text: str, line: int) -> None:
    message = _error(text)
    assert message.startswith(f"{SOURCE}:{line}: not valid YAML: ")


def test_loads_default_source() -> None:
    with pytest.raises(BudgetFileError, match=r"^<budget file>:1 at version: "):
        loads("version: 3\n")


def test_loads_unknown_metric_names_key_path_and_line() -> None:
    text = "version: 1\nprofiles:\n  cpython-3.11:\n    tests/test_a.py::test_x:\n      peak: 100\n      heap: 5\n"
    assert _error(text) == (
        f"{SOURCE}:6 at profiles.cpython-3.11.tests/test_a.py::test_x.heap: "
        "unknown metric 'heap'; known metrics: peak, retained, allocations, allocated"
    )


def test_loads_unknown_metric_in_a_region() -> None:
    text = "version: 1\nprofiles:\n  p:\n    t:\n      regions:\n        r:\n          peak: 1\n          rss: 2\n"
    message = _error(text)
    assert message.startswith(f"{SOURCE}:8 at profiles.p.t.regions.r.rss: unknown metric 'rss'")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("lots", "'lots'"),
        ("'100'", "'100'"),
        ("-1", "-1"),
        ("1.5", "1.5"),
        ("1.0", "1.0"),
        ("true", "True"),
        ("no", "False"),
        ("null", "None"),
        ("", "None"),
        ("2001-01-01", "datetime.date(2001, 1, 1)"),
    ],
)
def test_loads_wrong_value_names_the_key(value: str, shown: str) -> None:
    text = f"version: 1\nprofiles:\n  p:\n    t:\n      retained: 3\n      peak: {value}\n"
    assert _error(text) == f"{SOURCE}:6 at profiles.p.t.peak: expected a whole number >= 0, got {shown}"


@pytest.mark.parametrize("value", ["[1]", "{a: 1}", "\n        - 1"])
def test_loads_collection_value_names_the_key(value: str) -> None:
    text = f"version: 1\nprofiles:\n  p:\n    t:\n      peak: {value}\n"
    message = _error(text)
    assert message.startswith(f"{SOURCE}:")
    assert message.endswith("at profiles.p.t.peak: expected a single value, not a list or a mapping")


@pytest.mark.parametrize(
    ("text", "line", "path", "key"),
    [
        ("version: 1\nversion: 1\n", 2, "version", "version"),
        ("version: 1\nprofiles:\n  p: {}\n  p: {}\n", 4, "profiles.p", "p"),
        ("version: 1\nprofiles:\n  p:\n    t: {peak: 1}\n    t: {peak: 2}\n", 5, "profiles.p.t", "t"),
        ("version: 1\nprofiles:\n  p:\n    t:\n      peak: 1\n      peak: 2\n", 6, "profiles.p.t.peak", "peak"),
        ("version: 1\nprofiles:\n  p:\n    t:\n      peak: 1\n      'peak': 2\n", 6, "profiles.p.t.peak", "peak"),
        (
            "version: 1\nprofiles:\n  p:\n    t:\n      regions:\n        r: {peak: 1}\n        r: {peak: 1}\n",
            7,
            "profiles.p.t.regions.r",
            "r",
        ),
    ],
)
def test_loads_duplicate_keys_are_rejected_with_the_line(text: str, line: int, path: str, key: str) -> None:
    assert _error(text) == f"{SOURCE}:{line} at {path}: duplicate key {key!r}"


@pytest.mark.parametrize(("version", "shown"), [("2", "2"), ("0", "0"), ("'1'", "'1'"), ("null", "None")])
def test_loads_wrong_version(version: str, shown: str) -> None:
    message = _error(f"# comment\nversion: {version}\nprofiles: {{}}\n")
    assert message == (f"{SOURCE}:2 at version: unsupported version {shown}; this pytest-allocbudget reads version 1")


@pytest.mark.parametrize("version", ["true", "1.0"])
def test_loads_rejects_version_that_only_compares_equal_to_1(version: str) -> None:
    message = _error(f"version: {version}\nprofiles: {{}}\n")
    assert message.startswith(f"{SOURCE}:1 at version: unsupported version")


def test_loads_missing_version() -> None:
    assert _error("profiles: {}\n") == f"{SOURCE}:1: missing 'version: 1'"


@pytest.mark.parametrize(("key", "line"), [("budgets", 2), ("Version", 3)])
def test_loads_unknown_top_level_key(key: str, line: int) -> None:
    text = "version: 1\n" + ("profiles: {}\n" if line == 3 else "") + f"{key}: {{}}\n"
    assert _error(text) == f"{SOURCE}:{line} at {key}: unknown key; expected 'version', 'hash_seed' and 'profiles'"


@pytest.mark.parametrize("text", ["- version\n- 1\n", "just text\n", "42\n"])
def test_loads_root_must_be_a_mapping(text: str) -> None:
    assert _error(text) == f"{SOURCE}:1: expected a mapping of names to values"


def test_loads_profiles_must_be_a_mapping() -> None:
    assert _error("version: 1\nprofiles:\n  - p\n") == (
        f"{SOURCE}:3 at profiles: expected a mapping of names to values"
    )


def test_loads_non_text_key() -> None:
    text = "version: 1\nprofiles:\n  p:\n    123: {peak: 1}\n"
    assert _error(text) == f"{SOURCE}:4 at profiles.p: expected a text key, got 123"


@pytest.mark.parametrize(
    ("text", "line", "path", "message"),
    [
        ("version: 1\nprofiles:\n  p:\n    t: {}\n", 4, "profiles.p.t", "an entry needs at least one metric or region"),
        (
            "version: 1\nprofiles:\n  p:\n    t:\n      regions: {}\n",
            5,
            "profiles.p.t",
            "an entry needs at least one metric or region",
        ),
        (
            "version: 1\nprofiles:\n  p:\n    t:\n      regions:\n        r: {}\n",
            6,
            "profiles.p.t.regions.r",
            "an entry needs at least one metric",
        ),
        ("version: 1\nprofiles:\n  p:\n    t:\n", 4, "profiles.p.t", "expected a mapping of names to values"),
    ],
)
def test_loads_empty_entry(text: str, line: int, path: str, message: str) -> None:
    assert _error(text) == f"{SOURCE}:{line} at {path}: {message}"


@pytest.mark.parametrize("loader", ["SafeLoader", "CSafeLoader"])
def test_a_character_yaml_refuses_names_the_line_with_either_loader(
    loader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PyYAML's own loader refuses the character when it is created, libyaml's while parsing: both are a clean error
    from pytest_allocbudget.budgets import yamlread

    if not hasattr(yaml, loader):
        pytest.skip(f"PyYAML here has no {loader}")
    monkeypatch.setattr(yamlread, "_Loader", getattr(yaml, loader))
    message = _error("version: 1\n# a bell: \x07\nprofiles: {}\n")
    assert message.startswith(f"{SOURCE}:2: not valid YAML: unacceptable character #x0007: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nprofiles: !custom x\n",
        "version: 1\nprofiles:\n  p:\n    t:\n      peak: !!int abc\n",
        "version: !!python/name:os.system\n",
    ],
)
def test_loads_bad_tags_are_budget_file_errors(text: str) -> None:
    message = _error(text)
    assert message.startswith(f"{SOURCE}:")


# ------------------------------------------------------------------------------------------------ loads: numbers

MAX = "18446744073709551615"  # 2**64 - 1, the largest value a 64-bit counter can hold


def _with_value(value: str, trailing: str) -> str:
    """A file in dump's layout with ``value`` for ``peak``; a trailing space sends it to the YAML reader."""
    return f"version: 1\nprofiles:\n  p:\n    t:\n      peak: {value}{trailing}\n"


@pytest.mark.parametrize("trailing", ["", " "], ids=["fast", "yaml"])
def test_the_largest_value_is_read(trailing: str) -> None:
    assert loads(_with_value(MAX, trailing)) == budget({("t", None): {"peak": 2**64 - 1}}, "p")


@pytest.mark.parametrize("trailing", ["", " "], ids=["fast", "yaml"])
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("18446744073709551616", "18446744073709551616"),
        ("99999999999999999999999", "99999999999999999999999"),
        ("1" * 5000, "a number of 5000 digits"),  # past int()'s digit limit
    ],
)
def test_a_value_past_64_bits_names_the_line(value: str, shown: str, trailing: str) -> None:
    assert _error(_with_value(value, trailing)) == (
        f"{SOURCE}:5 at profiles.p.t.peak: {shown} is too large; a value is at most {MAX} (2**64 - 1)"
    )


@pytest.mark.parametrize("trailing", ["", " "], ids=["fast", "yaml"])
@pytest.mark.parametrize(
    "value", ["010", "00", "09", "0010", "012345", "0x10", "0b11", "1_000", "+5", "1:30", "!!int 010", "-0"]
)
def test_numbers_other_than_plain_decimal_are_rejected_by_both_readers(value: str, trailing: str) -> None:
    # YAML 1.1 reads 010 as 8, 1_000 as 1000 and 1:30 as 90; YAML 1.2 reads them as 10 and two strings: a value
    # any YAML reader could read differently is refused rather than guessed.
    shown = value.removeprefix("!!int ")
    assert _error(_with_value(value, trailing)) == (
        f"{SOURCE}:5 at profiles.p.t.peak: expected a whole number >= 0 in plain decimal digits, got {shown!r}"
    )


@pytest.mark.parametrize(("value", "shown"), [("0o17", "'0o17'"), ("1e3", "'1e3'"), ("10.0", "10.0")])
def test_other_yaml_number_forms_are_not_whole_numbers(value: str, shown: str) -> None:
    for trailing in ("", " "):
        assert _error(_with_value(value, trailing)) == (
            f"{SOURCE}:5 at profiles.p.t.peak: expected a whole number >= 0, got {shown}"
        )


@pytest.mark.parametrize(("version", "shown"), [("01", "01"), ("0x1", "0x1"), ("1" * 5000, "a number of 5000 digits")])
def test_a_version_is_plain_decimal_too(version: str, shown: str) -> None:
    assert _error(f"version: {version}\n") == (
        f"{SOURCE}:1 at version: unsupported version {shown}; this pytest-allocbudget reads version 1"
    )


@pytest.mark.parametrize("key", ["1" * 5000, "0x10"])
def test_a_number_as_a_key_is_not_converted(key: str) -> None:
    shown = key if len(key) < 30 else "a number of 5000 digits"
    assert _error(f"version: 1\nprofiles:\n  p:\n    ? {key}\n    : {{peak: 1}}\n") == (
        f"{SOURCE}:4 at profiles.p: expected a text key, got {shown}"
    )


@pytest.mark.parametrize("text", ["!!float", '!!float ""', "!!bool maybe", "!!timestamp soon", "!!int"])
def test_a_tag_its_constructor_fails_on_is_a_budget_file_error(text: str) -> None:
    message = _error(f"version: 1\nprofiles:\n  p:\n    t:\n      peak: {text}\n")
    assert message.startswith(f"{SOURCE}:5 at profiles.p.t.peak: ")


# ------------------------------------------------------------------------------------------------ loads: references

NESTED_ALIASES = """\
version: 1
profiles:
  p:
    t0: &t
      regions: &r
        r0: &v {peak: 1}
        r1: *v
        r2: *v
        r3: *v
    t1: *t
    t2: {regions: {<<: *r, r4: *v}}
  q: &p
    t0: *t
    t1: *t
  q1: *p
  q2: *p
"""


def test_aliases_are_rejected_before_anything_is_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_allocbudget.budgets import yamlread

    walked: list[str] = []
    original = yamlread._Reader.mapping

    def counting(self: yamlread._Reader, node: yaml.Node, path: str) -> Iterator[tuple[str, yaml.Node, str]]:
        walked.append(path)
        return original(self, node, path)

    monkeypatch.setattr(yamlread._Reader, "mapping", counting)
    assert _error(NESTED_ALIASES) == (
        f"{SOURCE}:4 at profiles.p.t0: YAML anchors (&t) are not allowed in a budget file; write each value out"
    )
    assert walked == []  # refused from the parser's events: not one mapping, let alone an entry, was read


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: 1\nprofiles:\n  p:\n    t:\n      peak: &n 1\n",
            "5 at profiles.p.t.peak: YAML anchors (&n) are not allowed",
        ),
        ("version: 1\nprofiles: &p {}\n", "2 at profiles: YAML anchors (&p) are not allowed"),
        ("&d\nversion: 1\n", "1: YAML anchors (&d) are not allowed"),
        (
            "version: 1\nprofiles:\n  p:\n    t:\n      peak: *n\n",  # an alias that refers to nothing
            "5 at profiles.p.t.peak: YAML aliases (*n) are not allowed",
        ),
        ("version: 1\nprofiles:\n  p:\n    *k : {peak: 1}\n", "4 at profiles.p: YAML aliases (*k) are not allowed"),
        (
            "version: 1\nprofiles:\n  p:\n    t:\n      <<: {peak: 1}\n",
            "5 at profiles.p.t: YAML merge keys ('<<') are not allowed",
        ),
        (
            "version: 1\nprofiles:\n  p:\n    t:\n      regions:\n        - <<\n",
            "6 at profiles.p.t.regions: YAML merge keys ('<<') are not allowed",
        ),
    ],
)
def test_anchors_aliases_and_merge_keys_name_the_line(text: str, message: str) -> None:
    assert _error(text).startswith(f"{SOURCE}:{message} in a budget file")


@pytest.mark.parametrize(
    "text",
    [
        'version: 1\nprofiles:\n  p:\n    "t[a&b*c]":\n      peak: 1\n',
        "version: 1\nprofiles:\n  p:\n    t[a&b*c]:\n      peak: 1\n",
        "version: 1\nprofiles:\n  p:\n    '<<':\n      peak: 1\n",
        "version: 1\nprofiles:\n  p:\n    t:\n      peak: 1 # &a *a <<\n",
    ],
)
def test_ampersands_stars_and_quoted_angles_are_only_text(text: str) -> None:
    assert len(loads(text)) == 1


# ------------------------------------------------------------------------------------------------ the two readers agree

#: Keys the fast reader might take, and some it must not: YAML's special words, long keys near YAML's 1024-character
#: limit for a key on one line, quoted keys with escapes, keys that end in ':'.
line_keys = st.one_of(
    st.sampled_from([*METRICS, "regions", "version", "profiles", "rss", "p", "t", "r"]),
    st.sampled_from(["null", "Null", "~", "Yes", "on", "OFF", "y", "a:b", "a:", "a,b", "a]", "-a", "<<", "=", ".inf"]),
    st.from_regex(r"[A-Za-z_/][A-Za-z0-9_./:\[\]()=+,@#'-]{0,8}", fullmatch=True),
    st.text(max_size=8).map(store._quote),
    st.text(max_size=8).map('"{}"'.format),
    st.integers(min_value=995, max_value=1030).map("k".__mul__),
    st.text(max_size=6),
)
good_numbers = st.integers(min_value=0, max_value=2**64 - 1).map(str)
#: Numbers in every form YAML knows, with leading zeros, and around 2**64.
number_texts = st.one_of(
    st.builds("{}{}".format, st.sampled_from(["0", "00", "+", "-", "0x", "0o", "0b"]), good_numbers),
    st.integers(min_value=2**64 - 3, max_value=2**64 + 3).map(str),
    st.from_regex(r"[+-]?0*[0-9]{1,22}", fullmatch=True),
    st.sampled_from([MAX, "18446744073709551616", "99999999999999999999", "1" * 5000, "00", "010", "09"]),
    st.sampled_from(["0x10", "0o17", "0b11", "1_000", "+5", "-1", "1e3", "10.0", "1:30", ".inf", "!!int 010"]),
    st.from_regex(r"[0-9_:+.xoeE-]{1,6}", fullmatch=True),
)
line_values = st.one_of(
    st.none(),
    good_numbers,
    number_texts,
    number_texts,
    st.sampled_from(["{}", "[]", "{peak: 1}", "~", "null", "yes", "&a 1", "*a", "<<", "!!float", "'5'", '"5"']),
    st.text(max_size=6),
)
line_tails = st.sampled_from(["", "", "", " ", "  # note", "\t", "\r", "\x85", "\u2028", " #"])
canonical_lines = st.sampled_from(
    [
        "version: 1",
        "profiles:",
        "profiles: {}",
        "  p:",
        "  p: {}",
        "  q:",
        "    t:",
        "    u:",
        "      peak: 5",
        "      retained: 0",
        "      regions:",
        "        r:",
        "        s:",
        "          peak: 7",
        "          allocated: 18446744073709551615",
        "",
        "# a comment",
    ]
)
key_lines = st.builds(
    lambda indent, key, value, tail: f"{' ' * indent}{key}:{'' if value is None else ' ' + value}{tail}",
    st.one_of(st.sampled_from([0, 2, 4, 6, 8, 10]), st.integers(min_value=0, max_value=12)),
    line_keys,
    line_values,
    line_tails,
)
explicit_key_lines = st.builds(
    lambda indent, key, colon: f"{' ' * indent}? {key}\n{' ' * colon}:",
    st.sampled_from([2, 4, 8]),
    line_keys,
    st.sampled_from([0, 2, 4, 8]),
)
other_lines = st.one_of(
    st.builds("#{}".format, st.text(max_size=10)),
    st.sampled_from(["---", "...", "%YAML 1.1", "  ", "- a", "? x", "\ufeff", "  #", "{"]),
    st.text(max_size=20),
)
file_lines = st.one_of(canonical_lines, canonical_lines, key_lines, key_lines, explicit_key_lines, other_lines)
Edit = tuple[int, str, str]
edits = st.lists(
    st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from(["insert", "replace", "delete"]), file_lines),
    max_size=4,
)


def _edited(text: str, changes: list[Edit]) -> str:
    """``text`` with whole lines inserted, replaced or deleted."""
    lines = text.split("\n")
    for position, action, line in changes:
        index = position % (len(lines) + 1)
        if action == "insert":
            lines.insert(index, line)
        elif index < len(lines):
            if action == "replace":
                lines[index] = line
            else:
                del lines[index]
    return "\n".join(lines)


Mutation = tuple[int, str, str, Optional[str], int, str]
mutations = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10_000),
        st.sampled_from(["key", "value", "indent", "tail"]),
        line_keys,
        line_values,
        st.integers(min_value=0, max_value=12),
        line_tails,
    ),
    max_size=3,
)


def _mutated(text: str, changes: list[Mutation]) -> str:
    """dump's text with a key, a value, an indent or the end of a line replaced, the rest of the layout kept."""
    lines = text.split("\n")
    for position, part, key, value, indent, tail in changes:
        index = position % len(lines)
        head, colon, rest = lines[index].rpartition(":")
        if not colon or lines[index].startswith("#"):
            continue
        spaces = len(head) - len(head.lstrip(" "))
        if part == "key":
            head = " " * spaces + key
        elif part == "value":
            rest = "" if value is None else " " + value
        elif part == "indent":
            head = " " * indent + head.lstrip(" ")
        else:
            rest += tail
        lines[index] = head + colon + rest
    return "\n".join(lines)


#: Valid keys and values, laid out as dump lays them out, with at most one key or value replaced by an odd one: the
#: fast reader reads all of the text but that token, and must refuse the text exactly where YAML would.
good_keys = st.one_of(
    st.from_regex(r"[a-z_/][a-z0-9_./\[\]-]{0,10}", fullmatch=True).filter(lambda key: key not in store._SPECIAL),
    st.text(max_size=8).map(store._quote),
)
odd_keys = st.one_of(line_keys, st.integers(min_value=1015, max_value=1035).map("k".__mul__))
Metrics = list[tuple[str, str]]
metric_texts = st.lists(
    st.tuples(st.sampled_from(sorted(METRICS)), good_numbers), min_size=1, max_size=3, unique_by=lambda m: m[0]
)
LaidOut = tuple[str, Metrics, list[tuple[str, Metrics]]]
Odd = Optional[tuple[int, str, str, str, str]]


def _laid_out(profile: str, tests: list[LaidOut], odd: Odd) -> str:
    rows: list[tuple[int, str, str | None]] = [(2, profile, None)]  # indent, key, value
    for nodeid, metrics, regions in tests:
        rows.append((4, nodeid, None))
        rows.extend((6, name, value) for name, value in metrics)
        if regions:
            rows.append((6, "regions", None))
        for region, region_metrics in regions:
            rows.append((8, region, None))
            rows.extend((10, name, value) for name, value in region_metrics)
    lines = [f"{' ' * indent}{key}:{'' if value is None else ' ' + value}" for indent, key, value in rows]
    if odd is not None:
        position, kind, key, number, text = odd
        index = position % len(rows)
        indent, old_key, old_value = rows[index]
        if kind == "token" and old_value is not None:
            lines[index] = f"{' ' * indent}{old_key}: {number}"
        elif kind == "token":
            lines[index] = f"{' ' * indent}{key}:"
        elif kind == "tail":
            lines[index] += text
        else:
            lines.insert(index, "#" + text)
    return HEADER + "version: 1\nprofiles:\n" + "\n".join(lines) + "\n"


laid_out_texts = st.builds(
    _laid_out,
    good_keys,
    st.lists(
        st.tuples(
            good_keys,
            metric_texts,
            st.lists(st.tuples(good_keys, metric_texts), max_size=2, unique_by=lambda region: region[0]),
        ),
        min_size=1,
        max_size=3,
        unique_by=lambda test: test[0],
    ),
    st.one_of(
        st.none(),
        st.tuples(
            st.integers(min_value=0, max_value=10_000),
            st.sampled_from(["token", "token", "tail", "comment"]),
            odd_keys,
            number_texts,
            st.one_of(line_tails, st.text(max_size=3)),
        ),
    ),
)

#: Most texts the fast reader takes begin like this; mostly canonical lines after them keep it reading, so that the
#: property compares the two readers, rather than watching the fast one defer.
prefixes = st.sampled_from(
    [
        "",
        "version: 1\n",
        "version: 1\nprofiles:\n",
        "version: 1\nprofiles: {}\n",
        "version: 1\nprofiles:\n  p:\n",
        "version: 1\nhash_seed: 0\n",
        "version: 1\nhash_seed: 4294967295\nprofiles:\n  p:\n",
        "version: 1\nhash_seed: 4294967296\nprofiles:\n",
        "hash_seed: 1\nversion: 1\nprofiles:\n",
    ]
)
near_canonical_lines = st.one_of(canonical_lines, canonical_lines, canonical_lines, file_lines)
budget_texts = st.one_of(
    st.lists(file_lines, max_size=14).map("\n".join),
    st.builds("{}{}".format, prefixes, st.lists(near_canonical_lines, max_size=14).map("\n".join)),
    st.builds(_edited, budget_files.map(dump), edits),
    st.builds(_mutated, budget_files.map(dump), mutations),
    laid_out_texts,
    laid_out_texts,
)


def _read_with_yaml(text: str) -> BudgetFile | None:
    """The YAML reader's answer, ``None`` for a BudgetFileError; anything else it raises fails the test."""
    from pytest_allocbudget.budgets.yamlread import read_yaml

    try:
        return read_yaml(text, SOURCE)
    except BudgetFileError:
        return None


CANONICAL_START = HEADER + "version: 1\nprofiles:\n  p:\n    t:\n"


# Texts the two readers once read differently, kept so that each is checked on every run.
@example("#\x1f\n" + CANONICAL_START + "      peak: 1\n")  # YAML refuses control characters, even in a comment
@example(CANONICAL_START + "      peak: 1\n#\rversion: 2\n")  # YAML ends a line at \r, \x85, \u2028, \u2029
@example(CANONICAL_START + "      peak: 1\n# note\x85version: 2\n")
@example(CANONICAL_START + "      peak: 1\n    " + "k" * 1025 + ":\n      peak: 1\n")  # YAML's key length limit
@example(CANONICAL_START + "      peak: 010\n")  # 8 in YAML 1.1
@example(CANONICAL_START + "      peak: 09\n")  # a string in YAML 1.1
@example(CANONICAL_START + "      peak: 18446744073709551616\n")  # past 64 bits
@example(CANONICAL_START + "      peak: " + "1" * 5000 + "\n")  # past int()'s digit limit
@example("version: 1\nprofiles: {}\n  p:\n")  # nothing may follow a closed mapping
@settings(max_examples=500)
@given(budget_texts)
def test_the_fast_reader_and_the_yaml_reader_agree_on_any_text(text: str) -> None:
    fast = store._read_canonical(text)  # None: not its layout, it defers to the YAML reader
    event("read by the fast reader" if fast is not None else "deferred")
    slow = _read_with_yaml(text)
    if fast is not None:
        assert slow == fast


# ------------------------------------------------------------------------------------------------ hash seed


@pytest.mark.parametrize("trailing", ["", " "], ids=["fast", "yaml"])
def test_the_hash_seed_is_read_by_both_readers(trailing: str) -> None:
    text = f"version: 1\nhash_seed: 4294967295{trailing}\nprofiles: {{}}\n"
    assert loads(text, SOURCE) == BudgetFile({}, 4294967295)


def test_a_file_without_a_hash_seed_names_none() -> None:
    assert loads("version: 1\nprofiles: {}\n", SOURCE).hash_seed is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("4294967296", "4294967296 is too large; a hash seed is at most 4294967295 (2**32 - 1)"),
        ("-1", "expected a whole number >= 0, got -1"),
        ("0x10", "expected a whole number >= 0 in plain decimal digits, got '0x10'"),
        ("random", "expected a whole number >= 0, got 'random'"),
    ],
)
def test_a_bad_hash_seed_names_the_line(value: str, message: str) -> None:
    assert _error(f"version: 1\nhash_seed: {value}\nprofiles: {{}}\n") == f"{SOURCE}:2 at hash_seed: {message}"


def test_a_duplicate_hash_seed_is_refused() -> None:
    assert "duplicate key 'hash_seed'" in _error("version: 1\nhash_seed: 1\nhash_seed: 2\nprofiles: {}\n")


@pytest.mark.parametrize(
    ("text", "seed"),
    [
        (HEADER + "version: 1\nhash_seed: 12\nprofiles:\n  p:\n    t:\n      peak: 1\n", 12),
        ("version: 1\nprofiles:\n  p: {}\nhash_seed: 12\n", None),  # after the profiles: only the full read sees it
        ("version: 1\nhash_seed: 4294967296\n", None),  # not a seed: the full read refuses it
        ("version: 1\nhash_seed: 012\n", None),
        ("", None),
    ],
)
def test_peek_hash_seed_reads_the_line_dump_writes(tmp_path: Path, text: str, seed: int | None) -> None:
    path = tmp_path / "allocbudget.yaml"
    path.write_text(text, encoding="utf-8")
    assert store.peek_hash_seed(path) == seed


def test_peek_hash_seed_of_a_missing_or_unreadable_file_is_none(tmp_path: Path) -> None:
    assert store.peek_hash_seed(tmp_path / "missing.yaml") is None
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe")
    assert store.peek_hash_seed(tmp_path / "binary.yaml") is None


@given(budget_files)
def test_peek_hash_seed_agrees_with_the_full_read_of_what_dump_writes(budgets: BudgetFile) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "allocbudget.yaml"
        store.save(path, budgets)
        assert store.peek_hash_seed(path) == budgets.hash_seed
