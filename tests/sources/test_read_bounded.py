"""read_bounded asks for the stat's size first, yet a file that grew since is still read
whole up to the limit, and one over the limit still comes back one byte over."""

from __future__ import annotations

from pathlib import Path

from feedsvc.sources.walk import read_bounded


def read(path: Path, expected: int, limit: int) -> bytes:
    with path.open("rb") as f:
        return read_bounded(f, expected, limit)


def test_reads_the_stat_size(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"x" * 1000)
    assert read(path, 1000, 10_000) == b"x" * 1000


def test_a_file_that_grew_since_the_stat_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_bytes(b"y" * 5000)
    assert read(path, 10, 10_000) == b"y" * 5000


def test_a_file_over_the_limit_comes_back_one_byte_over(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_bytes(b"z" * 5000)
    assert len(read(path, 10, 100)) == 101
    assert len(read(path, 5000, 100)) == 101
    assert len(read(path, 5000, 4999)) == 5000
    assert read(path, 5000, 5000) == b"z" * 5000


def test_a_file_that_shrank_is_read_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_bytes(b"w" * 10)
    assert read(path, 5000, 10_000) == b"w" * 10
