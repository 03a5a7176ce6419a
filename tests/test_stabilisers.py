"""Every stabiliser's numbers stay as they were recorded: the reference runs of
tests/stabiliser_reference.py (spectral normalization, instance noise and its anneal, the
Nagarajan-Kolter term, packing, batch normalization, lookahead with the average, extragradient,
a scaled SGA, and all the game's stabilisers at once) have the run ids and final metrics, bit
for bit, that the JSON holds. Each case compiles a program of its own, so they are slow."""

import json

import pytest

from stabiliser_reference import CASES, FILE, compute

EXPECTED = json.loads(FILE.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_run_is_bit_for_bit_as_recorded(name):
    assert compute(name) == EXPECTED[name]
