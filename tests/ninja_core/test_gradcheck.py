from __future__ import annotations

import pytest

from ninja_core.config import Config
from ninja_core.data import Dataset
from ninja_core.gradcheck import finite_differences
from ninja_core.run import check


@pytest.mark.parametrize("cfg", [
    Config(dtype="float64"), Config(seed=3, batch_size=9, n_hidden=17, variant="fused"),
    Config(net="wavenet"), Config(net="wavenet", seed=4, batch_size=5, n_hidden=11, variant="fused"),
], ids=["mlp", "mlp-fused-small", "wavenet", "wavenet-fused-small"])
def test_finite_differences_agree_for_every_parameter(cfg: Config, dataset: Dataset) -> None:
    run = check(cfg, dataset)
    fd = finite_differences(run)
    assert set(fd) == set(run.tape.params)
    for name, result in fd.items():
        assert result.relerr <= 1e-6, (name, result.relerr)
        assert result.relerr_manual <= 1e-6, (name, result.relerr_manual)
        assert len(result.entries) == 6


def test_finite_differences_catch_a_wrong_gradient(default_run) -> None:  # type: ignore[no-untyped-def]
    fd = finite_differences(default_run)
    # the check has teeth: a doubled gradient is far outside its tolerance
    w2 = fd["W2"]
    doubled = [2 * x for x in w2.autograd]
    import torch

    from ninja_core.gradcheck import _rel
    assert _rel(torch.tensor(w2.numeric, dtype=torch.float64), torch.tensor(doubled, dtype=torch.float64)) > 0.3


def test_the_result_has_a_compact_repr_and_an_html_table(default_run) -> None:  # type: ignore[no-untyped-def]
    result = finite_differences(default_run)
    assert isinstance(result, dict) and list(result) == list(default_run.tape.params)
    text = repr(result)
    assert text.startswith("finite differences (float64") and len(text.splitlines()) == 1 + len(result)
    assert "| autograd " in text and len(text) < 1000
    assert repr(result["W1"]).startswith("<FiniteDifference W1: 6 entries")
    page = result._repr_html_()
    assert page.startswith("<table>") and page.count("<tr><td><code>") == len(result)
    assert result.worst() == max(max(fd.relerr, fd.relerr_manual) for fd in result.values())
