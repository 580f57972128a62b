"""Resource and timing reports: nextpnr's ``--report`` JSON plus Yosys' cell statistics.

The keys that scripts rely on (``report.json``): ``logic_cells``, ``flip_flops``, ``bram``,
``dsp``, ``fmax_mhz`` (of the ADC clock), ``timing_met``; also ``target_mhz``, ``clocks`` (every
clock's achieved and constrained MHz), ``domains`` (a board build: each clock domain of the board
top, ``sync`` and ``adc``, with its clock, ``fmax_mhz``, ``target_mhz`` and ``met``), ``utilization`` (every nextpnr cell type), ``device`` and
``fits``. A logic cell is an ``ICESTORM_LC`` on iCE40 (a LUT4 with its carry and flip-flop), a
``TRELLIS_COMB`` on ECP5 (a LUT4 half-slice) and a ``LUT4`` on Gowin; flip-flops are counted in
the synthesised netlist.
"""

from __future__ import annotations

import json
from pathlib import Path

from adcforge.errors import ToolchainError

#: nextpnr cell types per report key, per family
_CELLS = {
    "ice40": {"logic_cells": ("ICESTORM_LC",), "bram": ("ICESTORM_RAM",),
              "dsp": ("ICESTORM_DSP",), "spram": ("ICESTORM_SPRAM",)},
    "ecp5": {"logic_cells": ("TRELLIS_COMB",), "bram": ("DP16KD",),
             "dsp": ("MULT18X18D",), "slices": ("TRELLIS_SLICE",)},
    # nextpnr-himbaechel-gowin: a LUT4 each; ALU (carry) cells apart
    "gowin": {"logic_cells": ("LUT4",), "bram": ("BSRAM", "SDPB", "DPB", "SP", "ROM"),
              "dsp": ("MULT9X9", "MULT18X18", "MULTALU18X18", "ALU54D"), "alu": ("ALU",)},
}
_FF_PREFIXES = ("SB_DFF", "TRELLIS_FF", "DFF")  # DFF*: Gowin's (synth_gowin)


def count_flip_flops(yosys_netlist: dict) -> int:
    """Return the number of flip-flop cells in a Yosys JSON netlist (``write_json``)."""
    total = 0
    for module in yosys_netlist.get("modules", {}).values():
        if module.get("attributes", {}).get("blackbox"):
            continue  # cell library models
        for cell in module.get("cells", {}).values():
            if str(cell.get("type", "")).startswith(_FF_PREFIXES):
                total += 1
    return total


def _family(utilization: dict) -> str:
    if any(k.startswith("ICESTORM") for k in utilization):
        return "ice40"
    if any(k.startswith("TRELLIS") for k in utilization):
        return "ecp5"
    if "LUT4" in utilization and any(k in utilization for k in ("DFF", "IOB", "ALU")):
        return "gowin"
    raise ToolchainError("nextpnr report: unknown device family (no ICESTORM_*, TRELLIS_* or "
                         "Gowin LUT4/DFF cells in 'utilization'); only iCE40, ECP5 and Gowin "
                         "reports are understood")


def pick_clock(fmax: dict, hint: str | None) -> str | None:
    """Return the name of the clock in nextpnr's ``fmax`` table that ``hint`` names.

    nextpnr decorates net names (``clk$SB_IO_IN_$glb_clk``); a clock matches when ``hint`` is a
    substring of its name. Without a match: the one clock, or the one with the highest constraint.
    """
    if not fmax:
        return None
    if hint:
        matches = [name for name in fmax if hint in name]
        if matches:
            return min(matches, key=len)
    return max(fmax, key=lambda n: (fmax[n].get("constraint", 0), n))


def parse_nextpnr_report(report: dict, *, clock: str | None = None,
                         yosys_netlist: dict | None = None) -> dict:
    """Return the summary of one nextpnr ``--report`` JSON document (see the module docstring).

    ``clock`` names the ADC clock (a substring of its net name); ``yosys_netlist`` (the JSON
    netlist nextpnr read) supplies the flip-flop count, ``None`` when absent.
    """
    if not isinstance(report, dict) or "utilization" not in report:
        raise ToolchainError("nextpnr report: no 'utilization' table; is this a file written by "
                             "nextpnr --report?")
    util = report["utilization"]
    family = _family(util)
    out: dict = {"family": family}
    for key, types in _CELLS[family].items():
        out[key] = sum(int(util.get(t, {}).get("used", 0)) for t in types)
        out[key + "_available"] = sum(int(util.get(t, {}).get("available", 0)) for t in types)
    out["flip_flops"] = count_flip_flops(yosys_netlist) if yosys_netlist is not None else None
    # nextpnr-himbaechel-gowin lists output buffers as TBUF with none "available": they are IOBs
    ignore = {"TBUF"} if family == "gowin" else set()
    out["fits"] = all(int(v.get("used", 0)) <= int(v.get("available", 0))
                      for k, v in util.items() if k not in ignore)
    fmax = report.get("fmax", {}) or {}
    clocks = {name: {"fmax_mhz": round(float(v.get("achieved", 0.0)), 2),
                     "target_mhz": round(float(v.get("constraint", 0.0)), 2)}
              for name, v in fmax.items()}
    out["clocks"] = clocks
    name = pick_clock(fmax, clock)
    out["clock"] = name
    if name is None:
        out["fmax_mhz"] = None
        out["target_mhz"] = None
        out["timing_met"] = None
    else:
        out["fmax_mhz"] = clocks[name]["fmax_mhz"]
        out["target_mhz"] = clocks[name]["target_mhz"]
        out["timing_met"] = all(c["fmax_mhz"] >= c["target_mhz"] for c in clocks.values())
    out["utilization"] = {k: {"used": int(v.get("used", 0)), "available": int(v.get("available", 0))}
                          for k, v in util.items() if int(v.get("used", 0))}
    return out


def load_nextpnr_report(path: str | Path, *, clock: str | None = None,
                        yosys_json: str | Path | None = None) -> dict:
    """Read a nextpnr report (and optionally the Yosys netlist) and return its summary."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise ToolchainError(f"{path}: no nextpnr report; did place and route run?") from None
    except json.JSONDecodeError as exc:
        raise ToolchainError(f"{path}: not a JSON nextpnr report: {exc}") from None
    netlist = None
    if yosys_json is not None and Path(yosys_json).exists():
        netlist = json.loads(Path(yosys_json).read_text())
    return parse_nextpnr_report(report, clock=clock, yosys_netlist=netlist)


_ROWS = [("logic_cells", "logic cells"), ("flip_flops", "flip-flops"), ("bram", "BRAM"),
         ("dsp", "DSP"), ("fmax_mhz", "Fmax (MHz)"), ("target_mhz", "target (MHz)"),
         ("timing_met", "timing met")]


def format_report(summary: dict, title: str = "") -> str:
    """Return the summary as a small text table (what the CLI prints)."""
    lines = [title] if title else []
    for key, label in _ROWS:
        value = summary.get(key)
        avail = summary.get(key + "_available")
        shown = "n/a" if value is None else (("yes" if value else "NO") if isinstance(value, bool)
                                             else str(value))
        if avail:
            shown += f" / {avail}"
        lines.append(f"  {label:<14} {shown}")
    domains = summary.get("domains") or {}
    if len(domains) > 1:
        for name, dom in domains.items():
            shown = "n/a" if dom.get("fmax_mhz") is None else (
                f"{dom['fmax_mhz']} (target {dom['target_mhz']:g})")
            lines.append(f"  {'Fmax ' + name:<14} {shown}")
    if summary.get("fits") is False:
        lines.append("  DOES NOT FIT the device")
    if summary.get("timing_met") is False:
        lines.append("  TIMING FAILED: some clock is below its constraint")
    return "\n".join(lines)


def write_report(summary: dict, path: str | Path) -> Path:
    """Write a summary as pretty JSON."""
    path = Path(path)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return path
