"""A design file as a QONNX model: the ladder is QONNX's ``MultiThreshold``, the decode table a
``Gather``, the POST layer integer ONNX arithmetic, so that the field's tools (FINN, hls4ml,
Brevitas, qonnx itself) can read what adcforge learned.

The graph (field by field in ``docs/design-format.md``):

- input ``x``: float32 samples ``[batch, S]`` annotated ``UINT<input_bits>`` (a float32 carries
  every integer below 2**24 exactly, and samples have at most 16 bits). ``S`` is the design's
  ``samples_per_inference`` with a POST layer, a dynamic dimension without one;
- output ``code``: ``MultiThreshold(x, adc.thresholds)``, ``[batch, S]``, ``UINT<bits>``;
- output ``y``: without a POST layer the decoded table entries ``[batch, S, channels]``
  (``INT<decode.width>``); with one the POST layer's outputs ``[batch, outputs]``
  (``INT<mac.output_bits>``) computed in int64 tensors exactly as :func:`adcforge.golden.ref_post_mac`
  does: products ``(a << q) >> k`` (even exponents) and ``lut[a] >> k`` (odd), floor shifts
  written as ``(v - Mod(v, 2**k)) / 2**k`` so that no rounding mode of integer division matters,
  the accumulator in int64, then ``(acc + 2**(s-1)) >> s`` and saturation by ``Clip``.

Accumulators are int64, never float32, so the export is exact for every design the format
allows (``ACC_BITS_MAX`` is 64). qonnx's executor needs static shapes: set ``x``'s shape
(``ModelWrapper.set_tensor_shape``) before ``execute_onnx`` for a design without a POST layer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adcforge.design import Design
from adcforge.errors import AdcforgeError, ToolchainError
from adcforge.golden import sqrt_half_lut

OPSET = 13
QONNX_DOMAIN = "qonnx.custom_op.general"


def _onnx():
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ToolchainError("QONNX export needs the onnx package: `pip install qonnx`") from None
    return onnx, TensorProto, helper, numpy_helper


class _Graph:
    """Collects nodes and constant initialisers with unique names."""

    def __init__(self):
        _, self.T, self.h, self.nh = _onnx()
        self.nodes, self.inits, self.n = [], [], 0
        self.int_tensors: list[str] = []  # outputs of ops qonnx would otherwise call FLOAT32

    def const(self, value, name: str, dtype=np.int64) -> str:
        self.inits.append(self.nh.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str | None = None, **attrs) -> str:
        self.n += 1
        out = name or f"{op_type.lower()}_{self.n}"
        self.nodes.append(self.h.make_node(op_type, inputs, [out], name=f"n{self.n}_{op_type}",
                                           **attrs))
        return out

    def floor_shift(self, v: str, k: int, tag: str) -> str:
        """``v >> k`` (arithmetic, floor) on int64 tensors, exact for any sign."""
        if k == 0:
            return v
        p = self.const(1 << k, f"pow2_{tag}")
        rem = self.op("Mod", [v, p], fmod=0)  # remainder with the divisor's sign: in [0, 2**k)
        quotient = self.op("Div", [self.op("Sub", [v, rem]), p])
        self.int_tensors += [rem, quotient]
        return quotient


def design_to_qonnx(design: Design):
    """Return the QONNX ``onnx.ModelProto`` of a design (see the module docstring)."""
    onnx, T, h, _ = _onnx()
    g = _Graph()
    bits, c = design.bits, design.channels
    s_dim = design.samples_per_inference if design.mac is not None else "S"
    thresholds = np.asarray(design.thresholds, dtype=np.float32).reshape(1, -1)
    g.const(thresholds, "thresholds", np.float32)
    g.nodes.append(h.make_node("MultiThreshold", ["x", "thresholds"], ["code"],
                               domain=QONNX_DOMAIN, name="ladder", out_dtype=f"UINT{bits}",
                               data_layout="NC"))
    code_i = g.op("Cast", ["code"], to=T.INT64)
    g.int_tensors.append(code_i)
    table = g.const(design.decode.table, "decode_table")
    values = g.op("Gather", [table, code_i], axis=0)  # [batch, S, C]
    if design.mac is None:
        g.op("Cast", [values], "y", to=T.FLOAT)
        y_shape, y_elem = ["batch", s_dim, c], T.FLOAT
        y_type = f"INT{design.decode.width}"
    else:
        m, w = design.mac, design.decode.width
        q = m.product_frac_bits
        acts = g.op("Reshape", [values, g.const([-1, m.inputs], "acts_shape")])  # [batch, I]
        even = g.op("Mul", [acts, g.const(1 << q, "pow2_q")])
        lut = g.const(sqrt_half_lut(w, q), "sqrt_half_lut")
        odd = g.op("Gather", [lut, g.op("Add", [acts, g.const(1 << (w - 1), "lut_offset")])],
                   axis=0)
        acc = g.const(m.bias.reshape(1, -1), "bias")
        for n in np.unique(m.exponent):
            n = int(n)
            weights = np.where(m.exponent == n, m.sign, 0).T  # [inputs, outputs]
            if not weights.any():
                continue
            shifted = g.floor_shift(odd if n & 1 else even, n >> 1, f"n{n}")
            acc = g.op("Add", [acc, g.op("MatMul", [shifted, g.const(weights, f"w_n{n}")])])
        if m.output_shift:
            acc = g.floor_shift(g.op("Add", [acc, g.const(1 << (m.output_shift - 1), "half")]),
                                m.output_shift, "out")
        lo, hi = -(2 ** (m.output_bits - 1)), 2 ** (m.output_bits - 1) - 1
        clipped = g.op("Clip", [acc, g.const(lo, "out_min"), g.const(hi, "out_max")])
        g.op("Identity", [clipped], "y")
        y_shape, y_elem = ["batch", m.outputs], T.INT64
        y_type = f"INT{m.output_bits}"
    outputs = [h.make_tensor_value_info("code", T.FLOAT, ["batch", s_dim]),
               h.make_tensor_value_info("y", y_elem, y_shape)]
    graph = h.make_graph(g.nodes, design.name, [h.make_tensor_value_info("x", T.FLOAT,
                                                                        ["batch", s_dim])],
                         outputs, initializer=g.inits)
    model = h.make_model(graph, producer_name="adcforge",
                         opset_imports=[h.make_opsetid("", OPSET),
                                        h.make_opsetid(QONNX_DOMAIN, 1)])
    _annotate(model, {**dict.fromkeys(g.int_tensors, "INT64"), "x": f"UINT{design.input_bits}",
                      "code": f"UINT{bits}", values: f"INT{design.decode.width}", "y": y_type})
    onnx.checker.check_model(model)
    return model


def _annotate(model, datatypes: dict[str, str]) -> None:
    """Write QONNX datatype annotations (``quant_parameter_tensor_names``: ``finn_datatype``)."""
    from onnx import StringStringEntryProto, TensorAnnotation

    for tensor, dtype in datatypes.items():
        ann = TensorAnnotation(tensor_name=tensor)
        ann.quant_parameter_tensor_names.append(StringStringEntryProto(key="finn_datatype",
                                                                      value=dtype))
        model.graph.quantization_annotation.append(ann)


def export_qonnx(design: Design, path: str | Path) -> Path:
    """Write the QONNX model of ``design`` to ``path`` (atomically); return the path."""
    onnx, *_ = _onnx()
    path = Path(path)
    if path.suffix != ".onnx":
        raise AdcforgeError(f"{path}: a QONNX model is written to a .onnx file")
    model = design_to_qonnx(design)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return path
