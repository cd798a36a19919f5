"""Attention (B, nh, T, T) on the page: one sample, a grid of its heads, the causal mask drawn as masked."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from ninja_core.config import Config, ConfigError
from ninja_core.data import Dataset
from ninja_core.display import head_grid, node_view, per_sample_heads
from ninja_core.figures import MASKED, node_figure
from ninja_core.i18n import localize
from ninja_core.run import Run, check

T, NH, B = 8, 4, 32


def _decode(z: dict) -> np.ndarray:  # type: ignore[type-arg]
    rows, cols = (int(s) for s in z["shape"].split(","))
    return np.frombuffer(base64.b64decode(z["bdata"]), dtype="<f4").reshape(rows, cols)


@pytest.fixture(scope="module")
def gpt(gpt_run: Run) -> Run:
    return gpt_run


def _figure(run: Run, name: str, sample: int = 0, lang: str = "en") -> dict:  # type: ignore[type-arg]
    value, manual, reference = run.tensors(name)
    return node_figure(name, value, manual, reference, axes=run.net.axes(name, value.dim()), sample=sample,
                       lang=lang)  # type: ignore[arg-type]


def _block(grid: np.ndarray, origin: tuple[int, int]) -> np.ndarray:  # type: ignore[type-arg]
    r0, c0 = origin
    return grid[r0:r0 + T, c0:c0 + T]


def test_the_sample_chosen_is_the_one_shown_head_by_head(gpt: Run) -> None:
    spec = _figure(gpt, "preatt_0", sample=5)
    value = gpt.values["preatt_0"]
    view = node_view(*gpt.tensors("preatt_0"), axes=gpt.net.axes("preatt_0", 4), sample=5)
    heads = view.value.heads
    assert heads is not None and heads.sample == 5 and heads.n_samples == B and len(heads.origins) == NH
    drawn = _decode(spec["data"][0]["z"])
    for h, origin in enumerate(heads.origins):
        # preatt is before the mask: every entry is data, sample 5's and no other sample's
        assert np.array_equal(_block(drawn, origin), value[5, h].numpy())
        assert not np.array_equal(_block(drawn, origin), value[4, h].numpy())
    assert spec["layout"]["meta"]["sample"] == 5 and spec["layout"]["meta"]["samples"] == B
    assert "sample 5 of 32" in spec["data"][0]["name"]
    # head titles above each block, and the axes say what rows and columns are
    titles = [a["text"] for a in spec["layout"]["annotations"] if a.get("name", "").startswith("head-title")]
    assert titles[:NH] == [f"head {h}" for h in range(NH)] and len(titles) == 4 * NH  # every panel
    assert spec["layout"]["xaxis3"]["title"]["text"] == "key time"
    assert spec["layout"]["yaxis3"]["title"]["text"] == "query time"
    assert spec["layout"]["xaxis"]["ticktext"][:4] == ["0", "2", "4", "6"]


def test_a_masked_entry_is_marked_not_drawn_as_data(gpt: Run) -> None:
    spec = _figure(gpt, "att_0", sample=3)
    att = gpt.values["att_0"][3]
    view = node_view(*gpt.tensors("att_0"), axes=gpt.net.axes("att_0", 4), sample=3)
    assert view.value.heads is not None and view.value.masked is not None
    drawn = _decode(spec["data"][0]["z"])
    for h, origin in enumerate(view.value.heads.origins):
        block = _block(drawn, origin)
        future = np.triu(np.ones((T, T), dtype=bool), 1)
        assert np.isnan(block[future]).all()  # a masked 0 is no colour of the scale
        assert np.array_equal(block[~future], att[h].numpy()[~future])  # the rest is the data as it is
        assert _block(view.value.masked.numpy(), origin)[future].all()
        assert not _block(view.value.masked.numpy(), origin)[~future].any()
    # the mask overlay of the value panel: the same cells, in MASKED, hovering "masked"
    overlays = [t for t in spec["data"] if t.get("meta", {}).get("masked")]
    value_mask = next(t for t in overlays if t["xaxis"] == "x")
    assert np.array_equal(~np.isnan(_decode(value_mask["z"])), view.value.masked.numpy())
    assert value_mask["colorscale"][0][1] == MASKED and "masked" in value_mask["hovertemplate"]
    assert any("masked: key time after query time" in a["text"] for a in spec["layout"]["annotations"])
    assert any("all zero: bit-exact" in a["text"] for a in spec["layout"]["annotations"])  # gaps are no difference
    # datt is nonzero above the diagonal (dy @ v.T does not know the mask): that is data, not masked
    assert {t["xaxis"] for t in overlays} == {"x", "x4"}


def test_gradients_zero_under_the_mask_are_marked_masked(gpt: Run) -> None:
    spec = _figure(gpt, "preatt_masked_0", sample=0)
    overlays = {t["xaxis"] for t in spec["data"] if t.get("meta", {}).get("masked")}
    assert overlays == {"x", "x2", "x3", "x4"}  # -inf value, 0 gradients and a 0 difference
    _, _, reference = gpt.tensors("preatt_masked_0")
    assert reference is not None and bool((reference[0].triu(1) == 0).all())


def test_an_error_under_the_mask_stays_visible() -> None:
    """A learner's -inf copied onto the gradient is not "masked": it is a wrong number, and |diff| shows it."""
    axes = ("batch", "head", "query time", "key time")
    reference = torch.randn(2, 1, 4, 4).tril()
    wrong = reference.masked_fill(~torch.ones(4, 4, dtype=torch.bool).tril(), 0.5)
    grid = head_grid(wrong, 1, axes, inf_is_masked=False)
    assert grid.masked is not None and not grid.masked.any()
    assert per_sample_heads(axes) and not per_sample_heads(("batch", "time", "channel", "x"))


def test_bad_sample_names_the_range_in_english_and_german(gpt: Run) -> None:
    for bad in (-1, B):
        with pytest.raises(ConfigError) as err:
            _figure(gpt, "att_0", sample=bad)
        assert err.value.field == "sample" and f"0..{B - 1}" in err.value.message
    assert "ganze Zahl in 0..31" in localize(err.value.message, "de")
    # other tensors show every sample: the sample means nothing there and is not checked
    assert len(_figure(gpt, "ln1_0", sample=99)["data"]) == 4


def test_german_labels(gpt: Run) -> None:
    spec = _figure(gpt, "att_0", lang="de")
    texts = [a["text"] for a in spec["layout"]["annotations"]]
    assert "Kopf 0" in texts and any("kausale Maske" in t for t in texts)
    assert any("maskiert" in t.get("hovertemplate", "") for t in spec["data"])
    assert "Beispiel 0 von 32" in spec["data"][0]["name"]


def test_the_dojos_figure_of_an_attention_gradient_is_the_same_head_grid(gpt: Run) -> None:
    """The dojo's "yours" figure draws a learner's datt like the page draws autograd's: sample 0's heads."""
    from ninja_core.dojo.judge import figure_for

    yours = gpt.autograd["att_0"].clone()
    yours[0, 1] *= 2  # head 1 of sample 0 twice too large
    spec = figure_for(gpt, "att_0", yours)
    assert spec is not None
    titles = [a["text"] for a in spec["layout"]["annotations"] if a.get("name", "").startswith("head-title")]
    assert titles[:NH] == [f"head {h}" for h in range(NH)]
    assert any("masked: key time after query time" in a["text"] for a in spec["layout"]["annotations"])


def test_german_figures_say_how_they_were_drawn_in_german(gpt: Run, dataset: Dataset) -> None:
    """The display note ("shape … shown as …") and axis words are German on a German page; English stays."""
    att = _figure(gpt, "att_0", lang="de")
    assert att["layout"]["meta"]["how"].startswith("Beispiel 0 von 32 (Batch-Index): seine 4 Köpfe")
    assert "Query-Zeit" in str(att["layout"]) and "query time" not in str(att["layout"])
    mlp = check(Config(), dataset)
    value, manual, reference = mlp.tensors("emb")
    axes = mlp.net.axes("emb", value.dim())
    de = node_figure("emb", value, manual, reference, axes=axes, lang="de")
    en = node_figure("emb", value, manual, reference, axes=axes, lang="en")
    assert de["layout"]["meta"]["how"] == "Form (32, 3, 10) gezeigt als 32 × 30: Zeile = Batch, Spalte = Zeit·10 + Kanal"
    assert en["layout"]["meta"]["how"] == "shape (32, 3, 10) shown as 32 × 30: row = batch, column = time·10 + channel"
    assert de["layout"]["xaxis3"]["title"]["text"] == "(Zeit, Kanal) flachgelegt"
