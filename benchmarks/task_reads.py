"""How often one `mkd run` loads its tasks, and how often it reads their files (prints one line at exit).

Runs `mkd run` in this process with mkd.tasks wrapped: every load of a task (`_all_examples`) is counted,
and every read of its source (`resolve_spec`, called only when `read_once` has not the task already).
The run itself is the same as `mkd run ARGS`.

    python benchmarks/task_reads.py --set output_dir=fresh/runs
Run from the folder that holds runs/ (or name an empty output_dir for a fresh run).
"""

from __future__ import annotations

import atexit
import sys
import time

import mkd.tasks as tasks

counts = {"loads": 0, "reads": 0}
_load, _resolve = tasks._all_examples, tasks.resolve_spec


def _counted_load(*args, **kwargs):
    counts["loads"] += 1
    return _load(*args, **kwargs)


def _counted_read(*args, **kwargs):
    counts["reads"] += 1
    return _resolve(*args, **kwargs)


if __name__ == "__main__":
    tasks._all_examples, tasks.resolve_spec = _counted_load, _counted_read
    start = time.time()
    atexit.register(lambda: print(f"task loads {counts['loads']}, source reads {counts['reads']}, "
                                  f"{time.time() - start:.0f}s", file=sys.stderr))
    from mkd.cli import main

    sys.argv = ["mkd", "run", *sys.argv[1:]]
    main()
