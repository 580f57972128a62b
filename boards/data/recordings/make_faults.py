"""Make ``icebreaker-adc4_in12-faults.json``: a simulated-board run with injected link faults."""

from pathlib import Path

import numpy as np

from adcforge.design import resolve_design
from boards.hil import Fault, run_hil
from boards.platforms import get_board

if __name__ == "__main__":
    d = resolve_design("adc4_in12")
    x = np.random.default_rng(13).integers(0, 4096, 2560)
    frame, start = 2 * 512 + 8, 8 + 38  # a CODES frame; the STATUS and LOAD_THRESHOLDS frames
    faults = [Fault("corrupt", start + frame + 17), Fault("cut", start + 3 * frame + 500),
              Fault("rx_corrupt", 400)]
    out = Path(__file__).parent / "icebreaker-adc4_in12-faults.json"
    r = run_hil(d, x, faults=faults, sim_divisor=get_board("icebreaker").divisor,
                board="icebreaker", record=out)
    print({k: r[k] for k in ("checked", "mismatches", "resends", "timeouts", "error_responses",
                             "faults_injected", "recording")})
