"""Grade learners' notebooks without nbgrader or JupyterHub: `python -m helpers.grade`.

    python -m helpers.grade SUBMISSIONS --out DIR [--jobs N] [--cell-timeout S] [--total-timeout S]

`SUBMISSIONS/<learner>/<notebook>.ipynb` in; `DIR/grades.csv` (one row per graded part:
learner, notebook, grade_id, points, max_points, status) and
`DIR/feedback/<learner>/<notebook>.md` and `.html` out. Built like nbgrader's preprocessors,
from small steps that each do one job and can be tested alone:

- `steps`: pure notebook steps: read a submission, restore check cells (with their hidden
  tests) from solutions/ by grade_id, limit output, score each graded cell with a reason.
- `feedback`: the Markdown and HTML a learner reads.
- `sandbox`: run a command in its own process group, private /tmp and PID namespace when the
  system allows, and kill everything it started when it ends.
- `worker`: (inside the sandbox) execute one notebook cell by cell in a fresh kernel, with a
  per-cell timeout, and survive hangs that ignore SIGINT, `sys.exit` and kernel crashes.
- `zygote`: one process that imports the kernels' libraries once and forks each notebook's
  worker, isolated as `sandbox` isolates a fresh one; `forked_kernel`: the worker's kernel,
  forked from it too; `seal_keeper`: an audit hook in those kernels that keeps the checks' seal.
- `__main__`: the command line: many notebooks in parallel, a progress bar, grades.csv.
"""
