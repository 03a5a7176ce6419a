"""notebooks/tutorial.ipynb runs end to end in a fresh kernel, every cell without an error (slow).

The kernel is the environment's `python3` (ipykernel, in the `dev` extra), started in the
repository root with the checkout first on its PYTHONPATH, so it imports this checkout's
gan_jax whether or not the package is installed. nbclient raises CellExecutionError, naming
the cell and its traceback, at the first cell that raises; the test then fails.
"""

from __future__ import annotations

import os
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "tutorial.ipynb")
BUDGET_S = 300       # the notebook takes about a minute on 2 cores; a hung kernel fails instead


def test_notebook_is_stored_without_outputs():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 8
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.slow
def test_tutorial_notebook_runs_end_to_end():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=BUDGET_S,
                                     resources={"metadata": {"path": ROOT}})
    start = time.perf_counter()
    client.execute(env=env)               # raises CellExecutionError at a failing cell
    seconds = time.perf_counter() - start
    assert seconds < BUDGET_S
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "W1 over 16 seeds" in text and "32 runs recorded" in text
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert any("image/png" in o.data for o in shown)                    # the figure
    markdown = "".join(o.data.get("text/markdown", "") for o in shown)
    assert "ralsgan − nonsaturating paired" in markdown                 # the plugin's comparison
    assert "nonsaturating − minimax paired" in markdown
