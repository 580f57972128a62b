"""The co-simulation harness without a simulator: its result-file reader against Python's own
hex parsing, and the structure of the generated Verilog (what keeps Verilator fast)."""

import re

import numpy as np
import pytest

from tb.harness import HarnessSpec, harness_ports, harness_verilog, read_hex_words


def ref_read_hex_words(data: bytes) -> list[int]:
    """Every non-comment line of a ``$writememh`` file as a Python integer."""
    return [int(x, 16) for x in data.decode().splitlines() if x and not x.startswith("//")]


@pytest.mark.parametrize("data", [
    pytest.param(b"000d10\n00096e\n000e4a\n", id="fixed width"),
    pytest.param(b"0\n1\nf", id="no final newline"),
    pytest.param(b"ffffffffffffffff\n0000000000000000\n", id="64 bits, all ones and zero"),
    pytest.param(b"ABCDEF\nabcdef\n", id="both cases"),
    pytest.param(b"// memory dump\nff\n1\n", id="comment line"),
    pytest.param(b"f\n10\n", id="varying widths"),
    pytest.param(b"", id="empty"),
])
def test_read_hex_words(data):
    words = read_hex_words(data)
    assert words.dtype == np.uint64
    assert words.tolist() == ref_read_hex_words(data)


def test_read_hex_words_wider_than_64_bits():
    data = b"1" + b"0" * 16 + b"\n" + b"f" * 17 + b"\n"
    words = read_hex_words(data)
    assert words.dtype == object
    assert words.tolist() == [1 << 64, (1 << 68) - 1]


def test_read_hex_words_random_against_python():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 1 << 62, size=5000, dtype=np.int64)
    data = "".join(f"{v:016x}\n" for v in values.tolist()).encode()
    assert read_hex_words(data).tolist() == values.tolist()


def test_harness_copies_share_one_module():
    spec = HarnessSpec("dut_top", "i", 12, [("codes", 8), ("outputs", 16)], {"mode": 1},
                       copies=4)
    text = harness_verilog(spec)
    assert text.count("module tb_lane (") == 1
    assert len(re.findall(r"^    tb_lane lane\d+ \(", text, re.MULTILINE)) == 4
    assert text.count("dut_top dut (") == 1  # inside tb_lane only


def test_harness_copies_see_no_input_combinationally():
    """Copy 0 takes every harness input through falling-edge registers, the others through
    rising-edge ones; only copy 0 carries the manual ports."""
    spec = HarnessSpec("dut_top", "i", 12, [("codes", 8)], {"mode": 1}, copies=3)
    text = harness_verilog(spec)
    lanes = re.findall(r"^    tb_lane (lane\d+) \((.*?)\n    \);", text, re.MULTILINE | re.DOTALL)
    assert [name for name, _ in lanes] == ["lane0", "lane1", "lane2"]
    for name, body in lanes:
        pins = dict(re.findall(r"\.(\w+)\(([^)]*)\)", body))
        held = ("dut_rst", "mode", "out_sel", "ready_thresh", "manual")
        suffix = "_n" if name == "lane0" else "_q"
        assert all(pins[p].endswith(suffix) for p in held), (name, pins)
        if name == "lane0":
            assert pins["m_in_valid"] == "m_in_valid_n" and pins["m_in_ready"] == "m_in_ready"
        else:
            assert pins["m_in_valid"] == "1'b0" and pins["m_in_ready"] == ""
    assert "always @(negedge clk)" in text
    assert {"clk", "rst", "mode", "m_in_ready", "done"} <= set(harness_ports(spec))
