"""German all the way (issue 11, item 3): dojo verdicts, the grade table, dojo errors and the engine's
notes rendered with lang="de" hold no English sentence -- formulas and code aside."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import ninja_core
from ninja_core.config import Config
from ninja_core.data import Dataset
from ninja_core.dojo import DojoError, check_node, grade_cell
from ninja_core.i18n import has_german, localize
from ninja_core.run import Run, check

# Words of English prose that German prose does not use.
ENGLISH = {"the", "is", "are", "your", "yours", "and", "of", "with", "should", "be", "from", "not", "by", "to", "at",
           "line", "column", "wrong", "only", "over", "instead", "add", "remove", "which", "when", "where", "this",
           "that", "it", "its", "on", "each", "every", "were", "has", "have", "use", "than", "missing", "right",
           "rows", "entries", "differ", "differs", "sign", "flipped", "factor", "branch", "once", "twice", "shape"}
CODE = re.compile(r"'[^']*'|\S*[._=()\[\]*/@+\-<>{}]\S*|\S*\d\S*")  # quoted text, and anything that looks like code


def english_words(text: str) -> set[str]:
    prose = CODE.sub(" ", text.split("torch meldet:")[0])  # torch's own message is quoted as it is, like code
    return {w for w in re.findall(r"[A-Za-z]+", prose) if w.lower() in ENGLISH}


def assert_german(texts: list[str]) -> None:
    assert texts
    for text in texts:
        assert not english_words(text), (english_words(text), text)


@pytest.fixture(scope="module")
def wavenet(dataset: Dataset) -> Run:
    return check(Config(net="wavenet"), dataset)


VERDICTS = [
    ("bnmeani", "dbnmeani = (-dbndiff).sum(0)"),
    ("bndiff2", "dbndiff2 = (1.0/n) * torch.ones_like(bndiff2) * dbnvar"),
    ("hpreact", "dhpreact = (1.0 - h**2)"),
    ("hpreact", "dhpreact = (1.0 - h**2) * dh"),
    ("C", "dC = torch.zeros_like(C)\ndC[Xb.view(-1)] += demb.view(-1, 10)"),
    ("C", "dC = F.one_hot(Xb).float().view(-1, C.shape[0]).T @ demb.view(-1, C.shape[1])"),
    ("counts", "dcounts = counts_sum_inv * dprobs"),
    ("h", "dh = torch.zeros_like(h)"),
    ("W2", "dW2 = dlogits.T @ h"),
]


@pytest.mark.parametrize(("node", "code"), VERDICTS, ids=[c for _, c in VERDICTS])
def test_a_dojo_verdict_in_german_has_no_english_sentence(default_run: Run, node: str, code: str) -> None:
    body = check_node(default_run, node, code, figure=False).to_dict(figure=False, lang="de")
    texts = list(body["diagnosis"]) + ([body["fix"]["message"]] if body["fix"] else [])
    texts += [d for b in body["batches"] for d in b["diagnosis"]]
    assert_german(texts)


def test_the_part_5_trap_in_german(wavenet: Run) -> None:
    body = check_node(wavenet, "bnmeani1", "dbnmeani1 = (-dbndiff1).sum(0, keepdim=True)", figure=False).to_dict(
        figure=False, lang="de")
    assert "1 (Zeit) fehlt" in body["diagnosis"][0]
    assert_german(body["diagnosis"])


def test_a_grade_table_in_german_has_no_english_sentence(default_run: Run) -> None:
    from tests.ninja_core.test_dojo_judge import SEED_CELL

    cell = default_run.tape.exercise_cell().replace("dhprebn = dbndiff.clone()", "dhprebn = dbndiff").replace(
        "dC.index_add_(0, Xb.view(-1), demb.view(-1, C.shape[1]))", "dC[Xb.view(-1)] += demb.view(-1, 10)")
    for code in (cell, SEED_CELL + "\ndlogit_maxe = 1"):
        report = grade_cell(default_run, code)
        table = report.table(lang="de")
        assert "Ende-zu-Ende richtig" in table
        rows = [line.split(" | ", 4)[-1] for line in table.splitlines()[1:]]
        assert_german([table.splitlines()[0], *rows])
        body = report.to_dict(lang="de")
        assert_german([d for row in body["nodes"] for d in row["diagnosis"]] + body["notes"])


def test_dojo_errors_in_german(default_run: Run) -> None:
    for code in ("import os", "x = 'os'", "db2 = dlogits.sum(axs=0)", "while True:\n    pass", "x = 1",
                 "for i in range(10**9):\n    pass"):
        with pytest.raises(DojoError) as info:
            check_node(default_run, "b2", code, figure=False)
        assert_german([info.value.text("de")])


def test_the_engines_notes_in_german(default_run: Run, wavenet: Run) -> None:
    for run in (default_run, wavenet):
        for variant in ("chain", "fused"):
            notes = [localize(note, "de") for name in run.tape.backward_order
                     for note in run.tape.node_notes(name, variant)]
            assert_german(notes)


def test_every_dojo_sentence_has_its_german() -> None:
    """Every tr("...") template in the dojo and the comparison is registered in German."""
    root = Path(ninja_core.__file__).parent
    missing = []
    for path in [*sorted((root / "dojo").glob("*.py")), root / "compare.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "tr" and node.args:
                template = node.args[0]
                if isinstance(template, ast.Constant) and isinstance(template.value, str):
                    if not has_german(template.value):
                        missing.append(f"{path.name}: {template.value}")
                elif isinstance(template, ast.Name):
                    continue  # a template chosen from registered ones (checked where they are written)
    assert not missing, missing
