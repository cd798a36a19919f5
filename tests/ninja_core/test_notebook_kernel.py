"""A real kernel (issue 15's must-show): notebooks built from the seed notebook's own cells, with
judge(globals()) appended, executed by nbclient on ipykernel, and the judged table read back from the
cells' outputs. IPython keeps each cell's source in In, so judge() grades the backward cell locally too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ninja_core import notebook_support as seed

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def execute(cells: list[str], allow_errors: bool = False) -> Any:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=allow_errors,
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    return nb


def text_of(cell: Any) -> str:
    """Everything a cell showed as text: its printed lines and its result's text/plain."""
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
    return "\n".join(parts)


def html_of(cell: Any) -> str:
    return "\n".join(out.data.get("text/html", "") for out in cell.outputs
                     if out.output_type in ("execute_result", "display_data"))


def errors(nb: Any) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for cell in nb.cells for o in cell.outputs if o.output_type == "error"]


def table_rows(text: str) -> dict[str, list[str]]:
    """node -> the columns of its row in judge's text table."""
    rows = {}
    for line in text.splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) == 8 and cols[0] != "node":
            rows[cols[0]] = cols
    return rows


@pytest.fixture(scope="module")
def seed_and_planted() -> Any:
    """One kernel: the seed notebook judged as it is, then the forward pass again before each planted
    mistake's backward cell and its judge(globals()) (the forward cell starts the backward code anew)."""
    cells = seed.cells()
    for kind in seed.PLANTED:
        cells += [seed.FORWARD, seed.planted(kind), seed.JUDGE]
    return execute(cells)


def test_the_seed_notebook_in_a_kernel_is_judged_with_its_own_mistakes(seed_and_planted: Any) -> None:
    nb = seed_and_planted
    assert errors(nb) == []  # nothing crashes: not its cmp on the never-retained bnvar, not judge
    backward, judged = nb.cells[8], nb.cells[9]
    printed = backward.outputs[0].text
    assert len(printed.strip().splitlines()) == 18  # every cmp line of the seed's cell printed, one line each
    assert "the name says dh but t is zprebn (hprebn)" in printed  # its cmp("dh", dh, zprebn)
    assert "your da is the gradient of hpreact" in printed  # its misnamed da
    assert "bnvar.grad is None" in printed and "call bnvar.retain_grad()" in printed  # its TypeError, explained
    text = text_of(judged)
    assert "MLP (makemore part 4) · float32" in text and "forward: your 20 forward tensors are the tape's" in text
    assert "17/26 right end to end, 17/26 locally" in text and "In[9]" in text
    rows = table_rows(text)
    assert len(rows) == 26
    assert rows["hpreact"][5] == "missing" and "your da holds this gradient" in rows["hpreact"][7]
    assert rows["h"][1] == "dh" and rows["h"][5] == "exact"
    for node in ["bndiff", "bnmeani", "hprebn", "embcat", "W1", "b1", "emb", "C"]:  # never finished
        assert rows[node][5] == "missing" and f"never assigns d{node}" in rows[node][7], rows[node]
    html = html_of(judged)
    assert html.count("<tr>") == 27 and "your da holds this gradient" in html


@pytest.mark.parametrize("kind", list(seed.PLANTED))
def test_each_planted_mistake_is_named_in_the_kernels_output(seed_and_planted: Any, kind: str) -> None:
    index = 10 + 3 * list(seed.PLANTED).index(kind) + 2
    judged = seed_and_planted.cells[index]
    assert judged.source == seed.JUDGE
    _, _, node, words = seed.PLANTED[kind]
    text = text_of(judged)
    row = table_rows(text)[node]
    assert row[5] in ("mismatch", "shape_mismatch"), row
    assert words[0] in text and all(w in html_of(judged) for w in words), (kind, text)


def test_a_float64_notebook_with_the_seeds_own_cmp_is_judged_in_float64() -> None:
    """The seed's own cmp crashes on bnvar (the TypeError of the seed notebook, its cell's error); judge in
    the next cell still judges everything the cell assigned before it stopped, in float64."""
    nb = execute(seed.cells(dtype="float64", own_cmp=True), allow_errors=True)
    assert [e.split(":")[0] for e in errors(nb)] == ["TypeError"]
    text = text_of(nb.cells[-1])
    assert "MLP (makemore part 4) · float64" in text
    rows = table_rows(text)
    assert len(rows) == 26
    for node in ["logprobs", "probs", "logits", "h", "W2", "bngain", "bnvar", "bndiff2"]:
        assert rows[node][5] in ("exact", "approx"), rows[node]
        maxdiff = rows[node][4]
        assert maxdiff == "0" or float(maxdiff) < 1e-15, rows[node]
    assert rows["hpreact"][5] == "missing"
