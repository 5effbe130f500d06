"""affectlab.palette: a distinct colour per group, sized to the number of groups; and the Runs
comparison's colour per run."""

from __future__ import annotations

import pytest
from plotly.colors import qualitative as q

from affectlab.pages.runs_compare import run_colours
from affectlab.palette import MAX_DISTINCT_COLOURS, qualitative


@pytest.mark.parametrize("n, source", [(2, q.D3), (7, q.D3), (10, q.D3), (11, q.Dark24),
                                       (14, q.Dark24), (24, q.Dark24), (25, q.Alphabet),
                                       (26, q.Alphabet)])
def test_every_group_gets_its_own_colour(n, source):
    pal = qualitative(n)
    assert list(pal.colours) == list(source[:n])
    assert len(set(pal.colours)) == n  # the issue: 14–40 groups shared a 10-colour palette
    assert set(pal.symbols) == {"circle"} and pal.note is None


def test_past_26_groups_symbols_separate_and_a_note_says_so():
    pal = qualitative(40)
    assert len(pal.colours) == len(pal.symbols) == 40
    assert len(set(zip(pal.colours, pal.symbols, strict=True))) == 40
    assert len(set(pal.colours)) == MAX_DISTINCT_COLOURS
    assert "40 groups" in pal.note and "symbol" in pal.note
    assert "208" in qualitative(300).note  # beyond every (colour, symbol) pair
    assert qualitative(0).colours == ()


def test_qualitative_validates():
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="non-negative integer"):
            qualitative(bad)


def test_compared_runs_get_distinct_colours():
    colours = run_colours(["seed-ce", "seed-fspl-kl"])
    assert list(colours) == ["seed-ce", "seed-fspl-kl"]
    assert len(set(colours.values())) == 2
    # not two shades of one hue: D3's blue and orange
    assert list(colours.values()) == [q.D3[0], q.D3[1]]
    assert len(set(run_colours([f"r{i}" for i in range(12)]).values())) == 12
    with pytest.raises(TypeError, match="list of run names"):
        run_colours("seed-ce")
