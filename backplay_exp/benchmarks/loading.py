"""Benchmark rows from the hub or from local files, via `datasets`, checked field by field.

Where the rows come from (`Source`):
- `path` = a `.jsonl`/`.json` (optionally `.gz`) or `.parquet` file: that file is the split;
- `path` = a directory: a dataset saved with `save_to_disk`, or a data directory `datasets` can
  read (`test.jsonl`, `data/test-*.parquet`, ...), from which `split` is taken;
- no `path`: the hub dataset `hub_name` (config `hub_config`), split `split`.
With `split=None` every split is read, in sorted split order (MBPP selects by `task_id`).
Nothing here downloads unless the hub source is used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


@dataclass(frozen=True)
class Source:
    """Where a benchmark's rows come from (see the module docstring).

    Attributes:
        name: Benchmark name, used in error messages.
        hub_name: Hub dataset id used when `path` is None.
        hub_config: Hub dataset config (subset), if any.
        path: Local file or directory that replaces the hub.
        cache_dir: `datasets` cache directory (None = the `datasets` default).
    """

    name: str
    hub_name: str | None
    hub_config: str | None = None
    path: str | None = None
    cache_dir: str | None = None

    def describe(self) -> str:
        """Where the rows come from, for messages."""
        return self.path or f"hub:{self.hub_name}" + (
            f"/{self.hub_config}" if self.hub_config else ""
        )


def file_builder(path: Path) -> str:
    """The `datasets` builder of a data file (`json` or `parquet`), judged by its suffix."""
    suffixes = [s for s in path.suffixes if s != ".gz"]
    builder = FILE_BUILDERS.get(suffixes[-1] if suffixes else "")
    if builder is None:
        raise ValueError(
            f"{path}: unsupported data file; use .jsonl, .json, .jsonl.gz or .parquet "
            "(or a dataset directory)"
        )
    return builder


def load_rows(source: Source, split: str | None) -> list[dict[str, Any]]:
    """All rows of `split` (every split if None) as plain dicts, in file order.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if neither `path` nor `hub_name` is set, or a JSON line is malformed.
    """
    import datasets

    if source.path is not None:
        path = Path(source.path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{source.name}: benchmark.path={path} does not exist")
        if path.is_file():
            return _load_file(source, path)
        if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists():
            data = datasets.load_from_disk(str(path))
        else:
            data = datasets.load_dataset(str(path), cache_dir=source.cache_dir)
    elif source.hub_name:
        data = datasets.load_dataset(source.hub_name, source.hub_config, cache_dir=source.cache_dir)
    else:
        raise ValueError(f"{source.name}: set benchmark.path (local data) or benchmark.hub_name")
    return _select(source, data, split)


def _load_file(source: Source, path: Path) -> list[dict[str, Any]]:
    import datasets

    builder = file_builder(path)
    try:
        data = datasets.load_dataset(
            builder, data_files=str(path), split="train", cache_dir=source.cache_dir
        )
    except Exception as err:
        if builder == "json":  # e.g. a field whose type differs between rows: let the
            return _read_json_lines(source, path)  # schema check name the row and field
        raise ValueError(f"{source.name}: cannot read {path}: {err}") from err
    return data.to_list()


def _read_json_lines(source: Source, path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a ValueError names the first line that is not an object."""
    import gzip

    rows = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for index, line in enumerate(f):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{source.name}: {path} row {index}: invalid JSON ({err})"
                ) from None
            if not isinstance(row, dict):
                raise ValueError(f"{source.name}: {path} row {index}: expected a JSON object")
            rows.append(row)
    return rows


def _select(source: Source, data: Any, split: str | None) -> list[dict[str, Any]]:
    """One split of a Dataset/DatasetDict (all of them, in sorted order, if `split` is None)."""
    if not isinstance(data, Mapping):  # a single Dataset
        return data.to_list()
    if split is None:
        return [row for name in sorted(data) for row in data[name].to_list()]
    if split not in data:
        raise ValueError(
            f"{source.name}: {source.describe()} has no split {split!r} (it has {sorted(data)}); "
            "set benchmark.split"
        )
    return data[split].to_list()


def check_rows(
    name: str, rows: Sequence[Mapping[str, Any]], schema: Mapping[str, type | tuple[type, ...]]
) -> None:
    """Raise a ValueError naming the first row and field that does not match `schema`.

    Args:
        name: Benchmark name for the message.
        rows: The loaded rows.
        schema: Required field -> allowed type(s); `list` fields must hold strings.
    """
    for index, row in enumerate(rows):
        for field, kind in schema.items():
            value = row.get(field)
            if value is None:
                raise ValueError(f"{name}: row {index}: field {field!r} is missing or null")
            if not isinstance(value, kind):
                raise ValueError(
                    f"{name}: row {index}: field {field!r} should be {_kind(kind)}, "
                    f"got {type(value).__name__}: {str(value)[:80]!r}"
                )
            if isinstance(value, list) and not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name}: row {index}: field {field!r} should hold strings")


def _kind(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def take(items: list[Any], limit: int | None) -> list[Any]:
    """The first `limit` items (all if None); a negative limit is an error."""
    if limit is None:
        return items
    if limit < 0:
        raise ValueError(f"benchmark.limit must be >= 0 or null, got {limit}")
    return items[:limit]
