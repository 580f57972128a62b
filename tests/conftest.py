"""Fixtures shared by several test files."""

import pytest

from adcforge.design import parse_design


@pytest.fixture
def tiny_mac_design():
    """A 2-bit ADC on 8-bit samples, 2-channel decode, a 4-input (2 samples) → 3-output layer."""
    return parse_design({
        "format": "adcforge-design/1", "name": "tiny_mac",
        "adc": {"input_bits": 8, "thresholds": [40, 128, 200]},
        "decode": {"width": 6, "frac_bits": 3, "table": [[-32, 5], [-3, 31], [7, -9], [31, 0]]},
        "mac": {"inputs": 4, "outputs": 3, "exponent_bits": 2, "guard_bits": 1, "scale_exp": 0,
                "sign": [[1, -1, 0, 1], [-1, -1, 1, 1], [0, 0, 0, 1]],
                "exponent": [[0, 1, 0, 3], [2, 3, 1, 0], [0, 0, 0, 2]],
                "bias": [3, -100, 0], "output_bits": 10, "output_shift": 1},
    }, source="tiny_mac")
