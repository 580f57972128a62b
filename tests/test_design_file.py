"""The design file: every field validated, errors name file, field, value and allowed range."""

import copy

import numpy as np
import pytest
import yaml

from adcforge.design import (dump_design, example_designs, load_design, parse_design,
                             save_design)
from adcforge.errors import DesignError


@pytest.fixture
def doc():
    return yaml.safe_load(example_designs()["adc8_in16_mac"].read_text())


@pytest.mark.parametrize("name", list(example_designs()))
def test_examples_round_trip(name, tmp_path):
    d = load_design(example_designs()[name])
    out = save_design(d, tmp_path / "d.yaml")
    assert out.read_text() == example_designs()[name].read_text()
    assert dump_design(load_design(out)) == dump_design(d)


def _break(doc, path, value):
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


MALFORMED = [
    pytest.param(("format",), "adcforge-design/9", "field 'format'.*supported formats",
                 id="unknown format version"),
    pytest.param(("adc", "input_bits"), 17, r"field 'adc.input_bits': got 17; allowed range is "
                 r"\[1, 16\]", id="input bits out of range"),
    pytest.param(("adc", "input_bits"), "12", "field 'adc.input_bits': got '12'; expected an "
                 "integer", id="wrong type"),
    pytest.param(("adc", "thresholds"), list(range(1, 101)), "field 'adc.thresholds': got '100 "
                 "entries'; expected 2\\*\\*b - 1 entries", id="wrong threshold count"),
    pytest.param(("adc", "thresholds", 3), 1, r"field 'adc.thresholds\[3\]'.*strictly increasing",
                 id="thresholds not increasing"),
    pytest.param(("adc", "thresholds", 254), 70000, r"field 'adc.thresholds\[254\]': got 70000; "
                 r"allowed range is \[1, 65535\]", id="threshold above the input range"),
    pytest.param(("adc", "thresholds", 0), 0, r"field 'adc.thresholds\[0\]': got 0; allowed "
                 r"range is \[1, 65535\]", id="threshold zero"),
    pytest.param(("mac", "exponent", 0, 0), 8, r"field 'mac.exponent\[0\]\[0\]': got 8; allowed "
                 r"range is \[0, 7\]", id="exponent out of range"),
    pytest.param(("mac", "sign", 1, 2), 2, r"field 'mac.sign\[1\]\[2\]': got 2; allowed range "
                 r"is \[-1, 1\]", id="sign out of range"),
    pytest.param(("decode", "table", 5, 1), 128, r"field 'decode.table\[5\]\[1\]': got 128; "
                 r"allowed range is \[-128, 127\]", id="decode value too wide"),
    pytest.param(("decode", "colour"), 1, r"field 'decode.colour'.*unknown key", id="unknown key"),
    pytest.param(("adc",), KeyError, r"field 'adc' is missing", id="missing section"),
    pytest.param(("mac", "bias"), [1, 2], r"field 'mac.bias'.*expected 4 entries",
                 id="bias count"),
    pytest.param(("mac", "inputs"), 15, r"field 'mac.inputs'.*multiple of the decode table's 2 "
                 "channels", id="inputs not a multiple of channels"),
    pytest.param(("name",), "has space", r"field 'name'.*identifier", id="bad name"),
]


@pytest.mark.parametrize("path,value,message", MALFORMED)
def test_malformed_refused(doc, path, value, message, tmp_path):
    bad = _break(doc, path, value)
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(bad))
    with pytest.raises(DesignError, match=message) as exc:
        load_design(f)
    assert str(exc.value).startswith(str(f))


def test_not_yaml(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("adc: [1, 2\n")
    with pytest.raises(DesignError, match=r"x.yaml: not valid YAML at line"):
        load_design(f)


def test_missing_file(tmp_path):
    with pytest.raises(DesignError, match="no such design file"):
        load_design(tmp_path / "nope.yaml")


def test_zero_weight_needs_zero_exponent(doc):
    doc["mac"]["sign"][0][0] = 0
    doc["mac"]["exponent"][0][0] = 3
    with pytest.raises(DesignError, match=r"mac.exponent\[0\]\[0\].*zero weight"):
        parse_design(doc, "d.yaml")


def test_accumulator_width_is_worst_case(doc):
    d = parse_design(doc)
    m = d.mac
    # inputs * |most negative activation| * 2**q plus the largest bias must fit signed.
    bound = m.inputs * 2 ** (d.decode.width - 1) * 2**m.product_frac_bits + np.abs(m.bias).max()
    assert -(2 ** (d.acc_bits - 1)) <= -bound and bound <= 2 ** (d.acc_bits - 1) - 1
    assert bound > 2 ** (d.acc_bits - 2) - 1  # and it is not wider than needed


def test_save_refuses_invalid(tmp_path):
    d = load_design(example_designs()["adc4_in12"])
    bad = d.__class__(**{**d.__dict__, "thresholds": (5, 4) + d.thresholds[2:]})
    with pytest.raises(DesignError, match="strictly increasing"):
        save_design(bad, tmp_path / "x.yaml")
    assert not (tmp_path / "x.yaml").exists()
