"""Regenerate the bundled example design files (deterministic): python -m adcforge.examples.make_examples"""

from pathlib import Path

import numpy as np

from adcforge.design import Decode, Design, Mac, save_design

HERE = Path(__file__).parent


def sqrt_thresholds(bits: int, input_bits: int) -> list[int]:
    top = 2**input_bits - 1
    levels = 2**bits
    t = [int(np.floor(top * (i / levels) ** 2)) + 1 for i in range(1, levels)]
    for i in range(1, len(t)):  # keep strictly increasing at small scales
        t[i] = max(t[i], t[i - 1] + 1)
    return t


def main():
    rng = np.random.default_rng(2026)
    one = Design(name="adc1_in8", input_bits=8, thresholds=(128,),
                 decode=Decode(width=4, frac_bits=0, table=np.array([[-4], [3]])),
                 provenance={"note": "1-bit comparator: a threshold at mid-scale"})
    t4 = sqrt_thresholds(4, 12)
    centres = [(lo + hi) / 2 for lo, hi in zip([0] + t4, t4 + [4096])]
    table4 = np.array([[int(round(c / 4096 * 127))] for c in centres])
    four = Design(name="adc4_in12", input_bits=12, thresholds=tuple(t4),
                  decode=Decode(width=8, frac_bits=7, table=table4),
                  provenance={"note": "4-bit square-root companding ADC on a 12-bit sample"})
    t8 = sorted(rng.choice(np.arange(1, 2**16), size=255, replace=False).tolist())
    table8 = rng.integers(-128, 128, size=(256, 2))
    table8[0] = [-128, -128]  # the most negative value, for the worst case
    table8[255] = [127, 127]
    n_in, n_out = 16, 4
    sign = rng.choice([-1, 0, 1], size=(n_out, n_in), p=[0.45, 0.1, 0.45])
    exponent = np.where(sign == 0, 0, rng.integers(0, 8, size=(n_out, n_in)))
    mac = Mac(inputs=n_in, outputs=n_out, exponent_bits=3, guard_bits=2, scale_exp=-2,
              sign=sign, exponent=exponent, bias=rng.integers(-3000, 3000, size=n_out),
              output_bits=12, output_shift=3)
    eight = Design(name="adc8_in16_mac", input_bits=16, thresholds=tuple(t8),
                   decode=Decode(width=8, frac_bits=6, table=table8), mac=mac,
                   provenance={"note": "8-bit random ladder, 2-channel decode, 16->4 POST layer"})
    for d in (one, four, eight):
        save_design(d, HERE / f"{d.name}.yaml")


if __name__ == "__main__":
    main()
