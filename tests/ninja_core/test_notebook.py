from __future__ import annotations

from ninja_core.run import Run


def test_repr_html_is_the_cmp_table(default_run: Run) -> None:
    html = default_run._repr_html_()
    assert html.count("<tr>") == 27  # header + 26 nodes
    assert "<code>bnmeani</code>" in html and "exact" in html


def test_public_api_imports() -> None:
    import ninja_core as nc

    run = nc.check(nc.Config(batch_size=4, n_hidden=5))
    assert len(run.nodes) == 26
    tape = run.tape
    assert tape.resolve("zprebn") == "hprebn" and tape.resolve("a") == "h" and tape.resolve("nope") is None
