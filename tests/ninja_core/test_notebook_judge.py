"""judge(namespace) and cmp on the seed notebook's own cells, run in a plain namespace (the kernel
tests, test_notebook_kernel.py, run the same cells in a real Jupyter kernel)."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from typing import Any

import pytest
import torch

from ninja_core import Config, JudgeError, check, cmp, judge
from ninja_core.i18n import localize
from ninja_core.notebook import cmp_line
from ninja_core.notebook.namespace import find
from tests.ninja_core import notebook_support as seed
from tests.ninja_core.test_dojo_german import english_words


def run_cells(cells: list[str], namespace: dict[str, Any] | None = None, history: bool = False) -> dict[str, Any]:
    """Execute cells as a kernel would, in one namespace; with `history`, keep IPython's _ih too."""
    ns: dict[str, Any] = {} if namespace is None else namespace
    for cell in cells:
        if history:
            ns.setdefault("_ih", [""]).append(cell)
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(cell, "<cell>", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def before_backward() -> dict[str, Any]:
    """The seed notebook up to and including its forward pass (the slow part: building the dataset)."""
    return run_cells(seed.cells(judge=False)[:-1])


def with_backward(base: dict[str, Any], code: str = seed.BACKWARD, history: bool = True) -> dict[str, Any]:
    ns = dict(base)
    if history:
        ns["_ih"] = ["", seed.FORWARD]
    run_cells([code], ns, history=history)
    if history:
        ns["_ih"].append("judge(globals())")
    return ns


def test_the_seed_notebook_judged_with_its_own_mistakes_reported(before_backward: dict[str, Any]) -> None:
    j = judge(with_backward(before_backward))
    assert j.judged and j.rebuilt.found.net.name == "mlp" and j.run.config.dtype == "float32"
    assert j.rebuilt.found.config.n_hidden == 64 and j.rebuilt.found.config.n_embd == 10
    assert len(j.rows) == 26 and j.report is not None and j.backward is not None
    # its misnamed da: d(apreact), not the alias of dh; the table says where the gradient is
    hpreact = j.row("apreact")
    assert hpreact.status == "missing"
    assert "your da holds this gradient: name it dhpreact or dapreact" in hpreact.diagnosis[0]
    assert j.row("h").variable == "dh" and j.row("h").status == "exact"
    # everything up to dbndiff2 is right (the seed's (1 - a**2) rounds: approx, proved by the float64 rerun)
    done = ["logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits", "logit_maxes", "logits",
            "h", "W2", "b2", "bngain", "bnbias", "bnraw", "bnvar_inv", "bnvar", "bndiff2"]
    assert all(j.row(n).status in ("exact", "approx") and j.row(n).local_status in ("exact", "approx") for n in done)
    assert any("the formula is right" in d for d in j.row("bngain").diagnosis)
    # bnvar, whose .grad the seed never retained, is judged like any other
    assert j.row("bnvar").variable == "dbnvar"
    # the gradients it never finished: each reported, none crashing
    for n in ["bndiff", "bnmeani", "hprebn", "embcat", "W1", "b1", "emb", "C"]:
        assert j.row(n).status == "missing" and any(f"never assigns d{n}" in d for d in j.row(n).diagnosis), n
    text, html = repr(j), j._repr_html_()
    assert "17/26 right end to end, 17/26 locally" in text
    assert "<table>" in html and "your da holds this gradient" in html and html.count("<tr>") == 27


def test_without_the_code_every_value_is_still_judged_end_to_end(before_backward: dict[str, Any]) -> None:
    ns = with_backward(before_backward, history=False)
    j = judge(ns)
    assert j.report is None and all(r.local_status is None for r in j.rows)
    assert j.totals["passed"] == 17 and "local verdicts need your backward code" in repr(j)
    assert "your da holds this gradient" in j.row("hpreact").diagnosis[0]
    assert "not defined: your notebook has no dC" in j.row("C").diagnosis


@pytest.mark.parametrize("kind", list(seed.PLANTED))
def test_one_planted_mistake_per_kind_is_named(before_backward: dict[str, Any], kind: str) -> None:
    _, _, node, words = seed.PLANTED[kind]
    ns = with_backward(before_backward, seed.planted(kind))
    row = judge(ns).row(node)
    assert row.status in ("mismatch", "shape_mismatch"), (kind, row)
    assert row.local_status is not None
    text = " ".join(row.diagnosis)
    assert all(w in text for w in words), (kind, row.diagnosis)
    # without the code, the namespace alone still names it (the alias: the two names share storage)
    alone = " ".join(judge(with_backward(before_backward, seed.planted(kind), history=False)).row(node).diagnosis)
    assert words[0] in alone, (kind, alone)


def test_a_float64_notebook_is_judged_in_float64(before_backward: dict[str, Any]) -> None:
    ns = dict(before_backward)
    run_cells([seed.cells(dtype="float64")[5], seed.BATCH.replace("ix = torch.randint", "ix = torch.randint"),
               seed.FORWARD], ns)
    assert ns["C"].dtype == torch.float64
    ns = with_backward(ns)
    j = judge(ns)
    assert j.run.config.dtype == "float64" and j.run.values["h"].dtype == torch.float64
    assert j.run.autograd["W2"].dtype == torch.float64
    assert "float64" in j.headline()[0]
    # in float64 the seed's formulas agree with autograd to the last bits or exactly
    for n in ["logprobs", "probs", "h", "bngain", "bndiff2"]:
        assert j.row(n).status in ("exact", "approx"), n
        assert (j.row(n).end_to_end.maxdiff or 0.0) < 1e-15, n


def test_a_forward_pass_that_is_not_the_tapes_is_named_and_no_gradient_judged(before_backward: dict[str, Any]) -> None:
    ns = dict(before_backward)
    biased = seed.FORWARD.replace("bnvar = 1/(n-1) * bndiff2.sum(dim=0, keepdim=True)",
                                  "bnvar = 1/n * bndiff2.sum(dim=0, keepdim=True)")
    run_cells([biased, seed.BACKWARD], ns)
    j = judge(ns)
    assert not j.judged and j.rows == []
    wrong = [f for f in j.forward if not f.same]
    assert wrong[0].node == "bnvar" and wrong[0].root and not any(f.root for f in wrong[1:])
    assert all(f.same for f in j.forward if f.node in ("emb", "embcat", "hprebn", "bnmeani", "bndiff", "bndiff2"))
    line = j.headline()[1]
    assert "your forward pass is not the tape's: bnvar differs from the tape's by up to" in line
    assert "The tape computes bnvar = 1/(n-1) * bndiff2.sum(0, keepdim=True)" in line and "none is judged" in line
    assert "bnvar" in j._repr_html_()


def test_nothing_of_the_learners_is_modified(before_backward: dict[str, Any]) -> None:
    ns = with_backward(before_backward)

    def state() -> dict[str, Any]:
        found = {}
        for k, v in ns.items():
            if isinstance(v, torch.Tensor):
                found[k] = (v.clone(), v._version, v.requires_grad, v.is_leaf, v.retains_grad, v.grad_fn,
                            None if not v.is_leaf or v.grad is None else (v.grad.clone(), v.grad._version))
        return found

    def grads_of_intermediates() -> dict[str, Any]:
        return {k: ns[k].grad.clone() for k in ("logprobs", "probs", "a", "zprebn", "emb")}

    before, before_grads, rng = state(), grads_of_intermediates(), torch.get_rng_state()
    with contextlib.redirect_stdout(io.StringIO()):
        judge(ns)
        cmp("dh", ns["dh"], ns["a"])
        cmp("dbnvar", ns["dbnvar"], ns["bnvar"])
    after = state()
    assert before.keys() == after.keys()
    for k, (value, version, requires, leaf, retains, fn, grad) in before.items():
        v2, version2, requires2, leaf2, retains2, fn2, grad2 = after[k]
        assert torch.equal(value, v2) and version == version2, k
        assert (requires, leaf, retains, fn) == (requires2, leaf2, retains2, fn2), k
        assert (grad is None) == (grad2 is None), k
        if grad is not None:
            assert torch.equal(grad[0], grad2[0]) and grad[1] == grad2[1], k
    assert all(torch.equal(a, b) for a, b in zip(before_grads.values(), grads_of_intermediates().values(), strict=True))
    with warnings.catch_warnings():  # torch warns on reading a non-leaf's .grad: that None is the point here
        warnings.simplefilter("ignore", UserWarning)
        assert ns["bnvar"].grad is None and not ns["bnvar"].retains_grad  # still the seed's own state
    assert torch.equal(rng, torch.get_rng_state())  # no draw from the learner's global generator either


def test_a_namespace_without_a_network_gets_a_clear_error() -> None:
    with pytest.raises(JudgeError) as raised:
        judge({"x": torch.zeros(3)})
    message = str(raised.value)
    assert "no network found" in message and "mlp needs C, W1, b1, W2, b2, bngain, bnbias, Xb, Yb" in message
    assert "wavenet needs" in message and "gpt needs" in message
    ns = {"C": torch.zeros(27, 10), "W1": torch.zeros(30, 64), "Xb": torch.zeros(32, 3, dtype=torch.long)}
    with pytest.raises(JudgeError, match=r"missing: b1, W2, b2, bngain, bnbias, Yb"):
        judge(ns)
    with pytest.raises(ValueError):  # a JudgeError is a ValueError
        judge({})


def test_out_of_range_sizes_and_dtypes_are_named(default_run: Any) -> None:
    ns = {k: v.clone() for k, v in default_run.values.items() if isinstance(v, torch.Tensor)}
    half = {**ns, **{p: ns[p].half() for p in default_run.tape.params}}
    with pytest.raises(JudgeError, match="your parameters are float16: judge\\(\\) runs float32 or float64"):
        judge(half)
    mixed = {**ns, "C": ns["C"].double()}
    with pytest.raises(JudgeError, match="mix dtypes"):
        judge(mixed)
    one = {**ns, "Xb": ns["Xb"][:1], "Yb": ns["Yb"][:1]}
    with pytest.raises(JudgeError, match="your batch_size of 1 is outside what mlp runs here"):
        judge(one)


@pytest.mark.parametrize("cfg", [
    Config(net="wavenet", n_hidden=16, n_embd=6, batch_size=8),
    Config(net="gpt", n_head=2, n_layer=1, n_embd=16, block_size=5, batch_size=4),
    Config(n_hidden=7, n_embd=3, block_size=4, batch_size=5, dtype="float64"),
], ids=["wavenet", "gpt", "mlp-float64"])
def test_every_network_and_its_sizes_are_found_from_the_tensors(cfg: Config) -> None:
    run = check(cfg)
    ns: dict[str, Any] = {k: v.clone() for k, v in run.values.items() if isinstance(v, torch.Tensor)}
    ns.update({f"d{node}": run.manual[node].clone() for node in run.tape.backward_order})
    found = find(ns)
    assert found.net.name == cfg.net and found.config == cfg.replace(seed=found.config.seed)
    if cfg.net == "gpt":
        assert found.inferred["n_head"] == "forward"  # no parameter shows n_head: their q_0's shape does
    j = judge(ns, deep=False)
    assert j.judged and j.totals["passed"] == len(run.tape.backward_order)
    assert all(f.status == "exact" for f in j.forward)


# ---- cmp -----------------------------------------------------------------------------------------

def cmp_output(ns: dict[str, Any], line: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(line, "<cell>", "exec"), ns)
    return out.getvalue().strip()


LECTURE_LINE = re.compile(r"^(\S+)\s+\| exact: (True |False) \| approx: (True |False) \| maxdiff: (\S+) \| (\w+) \| (.*)$")


def test_cmp_keeps_the_lectures_line_and_adds_status_and_diagnosis(before_backward: dict[str, Any]) -> None:
    ns = with_backward(before_backward, history=False)
    out = cmp_output(ns, 'cmp("logprobs", dlogprobs, logprobs)')
    m = LECTURE_LINE.match(out)
    assert m is not None, out
    assert m.groups()[:5] == ("logprobs", "True ", "True ", "0.0", "exact")
    assert out.startswith(f"{'logprobs':15s} | exact: True  | approx: True  | maxdiff: 0.0")
    assert "bit for bit" in m.group(6)


def test_cmp_on_the_seed_notebooks_own_bugs(before_backward: dict[str, Any]) -> None:
    ns = with_backward(before_backward, history=False)
    # cmp("dh", dh, zprebn): compared with the wrong tensor's gradient
    dh = cmp_output(ns, 'cmp("dh", dh, zprebn)')
    assert "| mismatch |" in dh and "the name says dh but t is zprebn (hprebn): for dh pass a" in dh
    assert "against h's gradient yours is exact" in dh
    # cmp("da", da, a): the seed's da holds d(apreact)
    da = cmp_output(ns, 'cmp("da", da, a)')
    assert "| mismatch |" in da and "your da is the gradient of hpreact (dhpreact or dapreact), not of h" in da
    # cmp("dbnvar", dbnvar, bnvar): the TypeError of the seed notebook
    bnvar = cmp_output(ns, 'cmp("dbnvar", dbnvar, bnvar)')
    assert "bnvar.grad is None: autograd keeps .grad only for leaf tensors; call bnvar.retain_grad()" in bnvar
    assert "| approx |" in bnvar and "judged against the tape's autograd gradient of bnvar instead" in bnvar


def test_cmp_checks_the_shape_first(before_backward: dict[str, Any]) -> None:
    """The lecture's dbnmeani = (-dbndiff).sum(0): shape (64,), which == and allclose broadcast to 'exact'."""
    ns = with_backward(before_backward, seed.planted("alias without clone").replace(
        "dbnmeani = (-dbndiff).sum(dim=0, keepdim=True)", "dbnmeani = (-dbndiff).sum(0)").replace(
        "dzprebn = dbndiff\n", "dzprebn = dbndiff.clone()\n"), history=False)
    ns["bnmeani"].retain_grad()  # not needed: a retained gradient or not, the shape is checked first
    out = cmp_output(ns, 'cmp("bnmeani", dbnmeani, bnmeani)')
    assert "exact: False | approx: False | maxdiff: - | shape_mismatch |" in out
    assert "(64,) should be (1, 64): keepdim=True is missing" in out


def test_cmp_never_crashes_on_none_or_other_types(before_backward: dict[str, Any]) -> None:
    ns = with_backward(before_backward, history=False)
    for line, words in [('cmp("dC", None, C)', "| missing |"), ('cmp("dh", dh, None)', "t is a NoneType, not a tensor"),
                        ('cmp("dh", 3.0, a)', "| missing |"), ('cmp("nonsense", dh, a)', "| exact |")]:
        out = cmp_output(ns, line)
        assert words in out, (line, out)


def test_cmp_without_a_network_uses_the_checks_that_need_no_run() -> None:
    x = torch.randn(4, 5, requires_grad=True)
    (x * torch.arange(20.0).view(4, 5)).sum().backward()
    ns: dict[str, Any] = {"x": x, "cmp": cmp, "torch": torch}
    right = torch.arange(20.0).view(4, 5)
    ns.update(right=right, flipped=-right, double=2 * right, short=right.sum(0))
    assert "| exact |" in cmp_output(ns, 'cmp("x", right, x)')
    assert "the sign is flipped" in cmp_output(ns, 'cmp("x", flipped, x)')
    assert "off by a constant factor: yours ≈ 2 × autograd's" in cmp_output(ns, 'cmp("x", double, x)')
    assert "(5,) should be (4, 5)" in cmp_output(ns, 'cmp("x", short, x)')
    line = cmp_line("x", right, x)
    assert line.status == "exact" and line.node is None


def test_judge_and_cmp_in_german(before_backward: dict[str, Any]) -> None:
    j = judge(with_backward(before_backward, seed.planted("sign")), lang="de")
    text = j.table()
    assert "Ende-zu-Ende richtig" in text and "Vorzeichen" in text
    sentences = [*(localize(line, "de") for line in j.headline())]
    sentences += [localize(d, "de") for row in j.rows for d in row.diagnosis[:1]]
    for sentence in sentences:
        assert not english_words(sentence), sentence
    line = cmp_line("dbnvar", j.gradients["bnvar"], with_backward(before_backward)["bnvar"],
                    with_backward(before_backward, history=False))
    assert "retain_grad" in line.text("de") and not english_words(line.text("de").split(" | ")[-1])


def test_every_notebook_sentence_has_its_german() -> None:
    import ast
    import importlib
    import importlib.util
    from pathlib import Path

    import ninja_core
    from ninja_core.i18n import has_german

    root = Path(ninja_core.__file__).parent / "notebook"
    missing = []
    for path in sorted(root.glob("*.py")):
        if path.stem != "widget" or importlib.util.find_spec("anywidget") is not None:
            importlib.import_module(f"ninja_core.notebook.{path.stem}")  # registers its German
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "tr" and node.args:
                template = node.args[0]
                if isinstance(template, ast.Constant) and isinstance(template.value, str) \
                        and not has_german(template.value):
                    missing.append(f"{path.name}: {template.value}")
    assert not missing, missing


def test_judge_without_arguments_reads_the_callers_globals_and_source_can_be_given(
        before_backward: dict[str, Any]) -> None:
    ns = with_backward(before_backward, seed.planted("keepdim"), history=False)
    run_cells(["from ninja_core import judge\nfound = judge(deep=False)"], ns)
    assert ns["found"].row("bngain").status == "shape_mismatch" and ns["found"].report is None
    # a script has no In: its backward code can be passed (here with a line the dojo refuses, left out)
    code = "import os\n" + seed.planted("keepdim")
    j = judge(ns, source=code, deep=False)
    assert j.report is not None and j.backward is not None and j.backward.cells == (0,)
    assert j.row("bngain").local_status == "shape_mismatch" and j.row("bngain").lines == [19]
    assert j.backward.source.splitlines()[0] == ""  # the import left out, the line numbers kept
