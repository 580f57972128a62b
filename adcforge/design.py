"""The design file: the contract between the trained model, the golden model and the hardware.

A design file is YAML, format ``adcforge-design/1``, documented field by field in
``docs/design-format.md``. :func:`load_design` validates every field and returns a :class:`Design`;
anything malformed raises :class:`~adcforge.errors.DesignError` naming the file, the field, the
value and the allowed range. :func:`save_design` writes a design back, byte for byte
reproducibly.

Derived widths (product and accumulator formats of the POST layer) are computed here, once, so
that the golden model (:mod:`adcforge.golden`) and the gateware (``hdl.*``) agree by construction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import DesignError
from .yamlfile import load_yaml

FORMAT = "adcforge-design/1"
FORMATS = (FORMAT,)

INPUT_BITS = (1, 16)
CODE_BITS = (1, 8)
DECODE_WIDTH = (2, 24)
DECODE_FRAC = (0, 24)
DECODE_CHANNELS = (1, 16)
MAC_INPUTS = (1, 4096)
MAC_OUTPUTS = (1, 64)
MAC_EXPONENT_BITS = (1, 4)
MAC_GUARD_BITS = (0, 8)
MAC_SCALE_EXP = (-32, 32)
MAC_BIAS = (-(2**31), 2**31 - 1)
MAC_OUTPUT_BITS = (2, 32)
MAC_OUTPUT_SHIFT = (0, 48)
ACC_BITS_MAX = 64
MAC_DECODE_WIDTH_MAX = 12

# -- the rules every stage applies (written once) -----------------------------------------


def signed_range(width: int) -> tuple[int, int]:
    """Return the range ``(-2**(width-1), 2**(width-1) - 1)`` of a signed ``width``-bit word."""
    return -(2 ** (width - 1)), 2 ** (width - 1) - 1


def max_half_shift(exponent_bits: int) -> int:
    """Return ``K``, the largest ``k = n // 2`` over the exponents ``n < 2**exponent_bits``."""
    return (2**exponent_bits - 1) // 2


def product_frac_bits(exponent_bits: int, guard_bits: int) -> int:
    """Return ``Q = K + guard_bits``: the fractional bits a POST product has over its activation."""
    return max_half_shift(exponent_bits) + guard_bits


def accumulator_bits(inputs: int, decode_width: int, q: int, max_abs_bias: int) -> int:
    """Return the signed accumulator width that no input can overflow.

    Worst case: every input is the most negative decoded value ``-2**(W-1)``, every weight is
    ``±1`` (``n = 0``), every product has the same sign, and the bias adds its largest magnitude:
    ``|acc| <= inputs * 2**(W - 1 + Q) + max|bias|``.
    """
    bound = inputs * 2 ** (decode_width - 1 + q) + int(max_abs_bias)
    return bound.bit_length() + 1


def ladder_size_problem(count: int, input_bits: int) -> str | None:
    """Return why ``count`` thresholds cannot form a ladder on an ``input_bits`` sample, or None.

    A b-bit ladder has ``2**b - 1`` thresholds, ``b`` in ``CODE_BITS``, and they must fit in
    ``1..2**input_bits - 1``.
    """
    counts = [2**b - 1 for b in range(CODE_BITS[0], CODE_BITS[1] + 1)]
    if count not in counts:
        return (f"expected 2**b - 1 entries for b in {CODE_BITS[0]}..{CODE_BITS[1]}: one of "
                f"{counts}")
    if 2**input_bits - 1 < count:
        return f"a {input_bits}-bit input holds at most {2**input_bits - 1} distinct thresholds"
    return None


def threshold_problem(thresholds, top: int, *, sorted_required: bool = True):
    """Return ``(index, value, reason)`` for the first threshold that breaks the ladder rule, or
    None. The rule: integers in ``[1, top]``, strictly increasing (unless ``sorted_required`` is
    false: runtime thresholds may come in any order)."""
    thresholds = list(thresholds)
    for i, t in enumerate(thresholds):
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)):
            return i, t, f"expected an integer in [1, {top}]"
        if not 1 <= t <= top:
            return i, t, f"allowed range is [1, {top}]"
        if sorted_required and i and t <= thresholds[i - 1]:
            return i, t, f"thresholds must be strictly increasing: previous is {thresholds[i - 1]}"
    return None


_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Decode:
    """Code → value table: ``table[code, channel]`` signed ``width``-bit integers.

    The real value is ``table / 2**frac_bits``.
    """

    width: int
    frac_bits: int
    table: np.ndarray  # shape (2**bits, channels), int64

    @property
    def channels(self) -> int:
        return self.table.shape[1]


@dataclass(frozen=True)
class Mac:
    """A POST (power-of-√2) multiply–accumulate layer.

    Weight ``[j, i]`` is ``2**scale_exp * sign[j, i] * sqrt(2)**-exponent[j, i]`` (zero when the
    sign is 0). Input ``i`` of one inference is channel ``i % channels`` of the ``i // channels``-th
    sample. Products carry ``product_frac_bits`` more fractional bits than the decoded values; the
    bias is in those accumulator units; the output is the accumulator shifted right by
    ``output_shift`` (round half up) and saturated to ``output_bits`` signed bits.
    """

    inputs: int
    outputs: int
    exponent_bits: int
    guard_bits: int
    scale_exp: int
    sign: np.ndarray  # (outputs, inputs) in {-1, 0, 1}
    exponent: np.ndarray  # (outputs, inputs) in [0, 2**exponent_bits - 1]
    bias: np.ndarray  # (outputs,)
    output_bits: int
    output_shift: int

    @property
    def max_exponent(self) -> int:
        return 2**self.exponent_bits - 1

    @property
    def max_half_shift(self) -> int:
        """The largest ``k = n // 2`` over all allowed exponents ``n``."""
        return max_half_shift(self.exponent_bits)

    @property
    def product_frac_bits(self) -> int:
        """Extra fractional bits Q of a product over its activation: ``max_half_shift + guard``."""
        return product_frac_bits(self.exponent_bits, self.guard_bits)


@dataclass(frozen=True)
class Design:
    """A validated design file. See ``docs/design-format.md``."""

    name: str
    input_bits: int
    thresholds: tuple[int, ...]
    decode: Decode
    mac: Mac | None = None
    provenance: dict = field(default_factory=dict)
    source: str = "<memory>"

    @property
    def bits(self) -> int:
        """Code width b: ``len(thresholds) == 2**b - 1``."""
        return (len(self.thresholds) + 1).bit_length() - 1

    @property
    def levels(self) -> int:
        return 2**self.bits

    @property
    def channels(self) -> int:
        return self.decode.channels

    @property
    def samples_per_inference(self) -> int:
        """Samples the MAC layer consumes per output vector (1 without a MAC layer)."""
        return 1 if self.mac is None else self.mac.inputs // self.channels

    @property
    def product_bits(self) -> int:
        """Signed width of one POST product: ``decode.width + product_frac_bits``."""
        assert self.mac is not None
        return self.decode.width + self.mac.product_frac_bits

    @property
    def acc_bits(self) -> int:
        """Signed accumulator width that no input can overflow (:func:`accumulator_bits`)."""
        assert self.mac is not None
        bias = int(np.max(np.abs(self.mac.bias))) if self.mac.bias.size else 0
        return accumulator_bits(self.mac.inputs, self.decode.width, self.mac.product_frac_bits,
                                bias)


def sensor_to_samples(dn, adc_bits: int, input_bits: int) -> np.ndarray:
    """Map a sensor's ``adc_bits`` DN to a design's ``input_bits`` sample word.

    The sample keeps the DN's most significant bits: ``dn >> (adc_bits - input_bits)`` when the
    sensor has more bits, ``dn << (input_bits - adc_bits)`` when it has fewer; then clipped to
    ``[0, 2**input_bits - 1]``. Every path from the sensor to a design's input uses this rule.
    """
    dn = np.asarray(dn, dtype=np.int64)
    shift = adc_bits - input_bits
    x = dn >> shift if shift >= 0 else dn << -shift
    return np.clip(x, 0, 2**input_bits - 1)


# -- loading and validation ------------------------------------------------------------------


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, value: Any, allowed: str) -> DesignError:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return DesignError(f"{self.source}: field '{key}': got {shown}; {allowed}")

    def mapping(self, value: Any, key: str, required: set[str], optional: set[str] = set()):
        if not isinstance(value, dict):
            raise self.fail(key, value, "expected a mapping")
        for k in value:
            if k not in required | optional:
                where = f"{key}.{k}" if key else str(k)
                allowed = ", ".join(sorted(required | optional))
                raise self.fail(where, value[k], f"unknown key; allowed keys are: {allowed}")
        for k in sorted(required):
            if k not in value:
                where = f"{key}.{k}" if key else k
                raise DesignError(f"{self.source}: field '{where}' is missing")
        return value

    def integer(self, value: Any, key: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, value, f"expected an integer in [{lo}, {hi}]")
        if not lo <= value <= hi:
            raise self.fail(key, value, f"allowed range is [{lo}, {hi}]")
        return value

    def int_list(self, value: Any, key: str, length: int | None, lo: int, hi: int) -> list[int]:
        if not isinstance(value, list):
            raise self.fail(key, value, "expected a list of integers")
        if length is not None and len(value) != length:
            raise self.fail(key, f"{len(value)} entries", f"expected {length} entries")
        return [self.integer(v, f"{key}[{i}]", lo, hi) for i, v in enumerate(value)]

    def matrix(self, value: Any, key: str, rows: int, cols: int, lo: int, hi: int) -> np.ndarray:
        if not isinstance(value, list):
            raise self.fail(key, value, f"expected a list of {rows} rows")
        if len(value) != rows:
            raise self.fail(key, f"{len(value)} rows", f"expected {rows} rows")
        out = np.zeros((rows, cols), dtype=np.int64)
        for r, row in enumerate(value):
            out[r] = self.int_list(row, f"{key}[{r}]", cols, lo, hi)
        return out


def parse_design(data: Any, source: str = "<memory>") -> Design:
    """Validate a parsed YAML document and return the :class:`Design` it describes."""
    c = _Checker(source)
    top = c.mapping(data, "", {"format", "name", "adc", "decode"}, {"mac", "provenance"})
    if top["format"] not in FORMATS:
        raise c.fail("format", top["format"], f"supported formats: {', '.join(FORMATS)}")
    name = top["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise c.fail("name", name, "expected an identifier: letters, digits, '_', at most 64")

    adc = c.mapping(top["adc"], "adc", {"input_bits", "thresholds"})
    input_bits = c.integer(adc["input_bits"], "adc.input_bits", *INPUT_BITS)
    thresholds = adc["thresholds"]
    if not isinstance(thresholds, list):
        raise c.fail("adc.thresholds", thresholds, "expected a list of integers")
    problem = ladder_size_problem(len(thresholds), input_bits)
    if problem:
        raise c.fail("adc.thresholds", f"{len(thresholds)} entries", problem)
    bad = threshold_problem(thresholds, 2**input_bits - 1)
    if bad:
        raise c.fail(f"adc.thresholds[{bad[0]}]", bad[1], bad[2])
    bits = (len(thresholds) + 1).bit_length() - 1

    dec = c.mapping(top["decode"], "decode", {"width", "frac_bits", "table"})
    width = c.integer(dec["width"], "decode.width", *DECODE_WIDTH)
    frac = c.integer(dec["frac_bits"], "decode.frac_bits", *DECODE_FRAC)
    table_raw = dec["table"]
    if not isinstance(table_raw, list) or not table_raw:
        raise c.fail("decode.table", table_raw, f"expected {2**bits} rows, one per code")
    first = table_raw[0]
    channels = len(first) if isinstance(first, list) else 0
    if not DECODE_CHANNELS[0] <= channels <= DECODE_CHANNELS[1]:
        raise c.fail("decode.table[0]", first,
                     f"expected a list of {DECODE_CHANNELS[0]}..{DECODE_CHANNELS[1]} channel values")
    lo, hi = signed_range(width)
    table = c.matrix(table_raw, "decode.table", 2**bits, channels, lo, hi)
    decode = Decode(width=width, frac_bits=frac, table=table)

    mac = None
    if top.get("mac") is not None:
        mac = _parse_mac(c, top["mac"], channels)
    provenance = top.get("provenance") or {}
    if not isinstance(provenance, dict):
        raise c.fail("provenance", provenance, "expected a mapping (free-form)")

    design = Design(name=name, input_bits=input_bits, thresholds=tuple(thresholds), decode=decode,
                    mac=mac, provenance=provenance, source=source)
    if mac is not None and width > MAC_DECODE_WIDTH_MAX:
        raise c.fail("decode.width", width,
                     f"with a mac layer at most {MAC_DECODE_WIDTH_MAX}: the odd-exponent LUT of the "
                     f"POST multiplier has 2**width entries")
    if mac is not None and design.acc_bits > ACC_BITS_MAX:
        raise c.fail("mac.inputs", mac.inputs,
                     f"the accumulator would need {design.acc_bits} bits; at most {ACC_BITS_MAX}")
    return design


def _parse_mac(c: _Checker, raw: Any, channels: int) -> Mac:
    keys = {"inputs", "outputs", "exponent_bits", "guard_bits", "scale_exp", "sign", "exponent",
            "bias", "output_bits", "output_shift"}
    m = c.mapping(raw, "mac", keys)
    inputs = c.integer(m["inputs"], "mac.inputs", *MAC_INPUTS)
    if inputs % channels:
        raise c.fail("mac.inputs", inputs,
                     f"must be a multiple of the decode table's {channels} channels")
    outputs = c.integer(m["outputs"], "mac.outputs", *MAC_OUTPUTS)
    ebits = c.integer(m["exponent_bits"], "mac.exponent_bits", *MAC_EXPONENT_BITS)
    guard = c.integer(m["guard_bits"], "mac.guard_bits", *MAC_GUARD_BITS)
    scale_exp = c.integer(m["scale_exp"], "mac.scale_exp", *MAC_SCALE_EXP)
    sign = c.matrix(m["sign"], "mac.sign", outputs, inputs, -1, 1)
    exponent = c.matrix(m["exponent"], "mac.exponent", outputs, inputs, 0, 2**ebits - 1)
    zero_with_exp = np.argwhere((sign == 0) & (exponent != 0))
    if len(zero_with_exp):
        j, i = zero_with_exp[0]
        raise c.fail(f"mac.exponent[{j}][{i}]", int(exponent[j, i]),
                     "a zero weight (sign 0) must have exponent 0")
    bias = np.array(c.int_list(m["bias"], "mac.bias", outputs, *MAC_BIAS), dtype=np.int64)
    out_bits = c.integer(m["output_bits"], "mac.output_bits", *MAC_OUTPUT_BITS)
    out_shift = c.integer(m["output_shift"], "mac.output_shift", *MAC_OUTPUT_SHIFT)
    return Mac(inputs=inputs, outputs=outputs, exponent_bits=ebits, guard_bits=guard,
               scale_exp=scale_exp, sign=sign, exponent=exponent, bias=bias,
               output_bits=out_bits, output_shift=out_shift)


def load_design(path: str | Path, bundled: dict[str, Path] | None = None) -> Design:
    """Read and validate a design file (or a ``bundled`` one by name); raise
    :class:`DesignError` on any problem."""
    data, source = load_yaml(path, "design file", bundled=bundled, error=DesignError)
    return parse_design(data, source=source)


# -- writing ---------------------------------------------------------------------------------


class _FlowList(list):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def _plain(value: Any) -> Any:
    """Convert numpy scalars/arrays to plain Python; innermost lists flow style."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        if all(not isinstance(v, (list, dict)) for v in items):
            return _FlowList(items)
        return items
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def design_to_dict(design: Design) -> dict:
    """Return the YAML document of a design, in the canonical key order."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "name": design.name,
        "adc": {"input_bits": design.input_bits, "thresholds": list(design.thresholds)},
        "decode": {"width": design.decode.width, "frac_bits": design.decode.frac_bits,
                   "table": design.decode.table},
    }
    if design.mac is not None:
        m = design.mac
        doc["mac"] = {
            "inputs": m.inputs, "outputs": m.outputs, "exponent_bits": m.exponent_bits,
            "guard_bits": m.guard_bits, "scale_exp": m.scale_exp, "sign": m.sign,
            "exponent": m.exponent, "bias": m.bias, "output_bits": m.output_bits,
            "output_shift": m.output_shift,
        }
    if design.provenance:
        doc["provenance"] = design.provenance
    return _plain(doc)


def dump_design(design: Design) -> str:
    """Return the canonical YAML text of a design (deterministic)."""
    header = f"# adcforge design file, format {FORMAT}; fields in docs/design-format.md\n"
    body = yaml.dump(design_to_dict(design), Dumper=_Dumper, sort_keys=False, width=100,
                     allow_unicode=True)
    return header + body


def save_design(design: Design, path: str | Path) -> Path:
    """Validate and write a design file atomically (a temporary file renamed into place)."""
    path = Path(path)
    text = dump_design(design)
    parse_design(yaml.safe_load(text), source=str(path))  # never write what cannot be loaded
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


def example_designs() -> dict[str, Path]:
    """Return the bundled example design files by name."""
    return {p.stem: p for p in sorted(EXAMPLES_DIR.glob("*.yaml"))}


def resolve_design(name_or_path: str | Path) -> Design:
    """Load a design from a path, or from a bundled example's name (e.g. ``adc4_in12``)."""
    return load_design(name_or_path, bundled=example_designs())
