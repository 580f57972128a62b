"""A researcher's API: the learned ADC and the POST layer as ``torch.nn`` layers at the front of
your own network, and one call that writes the design file of such a network.

::

    from learn import ADC, PostConv, export_design, freeze, param_groups

    class Net(nn.Module):                      # any network whose first layer is the ADC
        def __init__(self):
            super().__init__()
            self.adc = ADC("learned", bits=2, sensor=sensor, channels=2)   # DN → decoded values
            self.post = PostConv(2, 8, (3, 3))                           # the hardware layer
            self.body = ...                                              # anything (host, float)

    model = Net()
    model(first_batch)                         # calibrates the ADC on the batch's histogram
    opt = torch.optim.Adam(param_groups(model, lr_thresholds=1e-2, lr_network=3e-3))
    ...                                        # train as usual
    design = freeze(model, name="mine")        # snap to the integers; eval() now = the hardware
    save_design(design, "mine.yaml")           # adcforge verilog / cosim / board build mine.yaml

Shapes are channels-first: the ADC takes raw sensor samples ``[N, C, H, W]`` (integer DN, any
float or integer dtype) and returns decoded values ``[N, C·D, H, W]`` (float32; ``D`` decode
channels per sample, ordered sample channel major, decode channel minor). :class:`ADC` takes its
quantizer as an argument, as Brevitas' ``QuantIdentity`` takes ``act_quant``: a method name of
:data:`learn.quant.METHODS`, a built :class:`~learn.quant.Quantizer`, or a callable
``SampleStats -> Quantizer``.

Errors are :class:`LayerError` / :class:`ExportError` (``adcforge.errors.AdcforgeError``), one
line naming the layer and why.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from adcforge.design import Decode, Design, design_to_dict, parse_design, save_design
from adcforge.errors import AdcforgeError, DesignError

from .post import PostConv, PostLinear
from .quant import METHODS, Quantizer, SampleStats, make_quantizer

__all__ = ["ADC", "PostConv", "PostLinear", "LayerError", "ExportError", "export_design",
           "freeze", "param_groups", "front_end", "design_from_layers"]


class LayerError(AdcforgeError):
    """A learn layer used in a way it does not support; the message names the layer and why."""


class ExportError(LayerError):
    """A model's front end cannot become a design file; the message names the layer and why."""


def _sensor_terms(sensor) -> dict:
    """``input_bits``, ``black``, ``gain_dn_per_e``, ``read_noise_dn`` of a ``sim`` sensor (a
    :class:`sim.Sensor`, its torch backend or a :class:`sim.config.SensorConfig`)."""
    c = getattr(sensor, "config", sensor)
    try:
        return {"input_bits": int(c.adc_bits), "black": float(c.black_level_dn),
                "gain_dn_per_e": float(c.conversion_gain_dn_per_e),
                "read_noise_dn": float(c.read_noise_e) * float(c.conversion_gain_dn_per_e)}
    except AttributeError as e:
        raise LayerError(f"ADC: sensor= must be a sim sensor or SensorConfig, got "
                         f"{type(sensor).__name__} ({e})") from None


class ADC(nn.Module):
    """The learned ADC as a layer: raw samples ``[N, C, H, W]`` (DN) → decoded ``[N, C·D, H, W]``.

    ``quantizer``: a method name (``learned``, ``hist``, ``uniform``, … :data:`METHODS`), a built
    :class:`Quantizer` (used as it is, already calibrated), or a callable ``SampleStats ->
    Quantizer``. With a name or a callable, the ADC calibrates on the first batch it sees (or on
    :meth:`calibrate`): the histogram of its samples sets the start (quantiles for the learned
    methods, like ``adcforge train``). ``bits``: code width (1..8); ``input_bits``: sample word
    (from ``sensor`` when given); ``sensor``: a ``sim`` sensor, whose black level, conversion gain
    and read noise the noise-matched gradient window uses; ``channels``, ``decoder``, ``width``
    and ``**options`` (``init``, ``threshold_param``, ``ste_window``, ``thresholds``) go to
    :func:`~learn.quant.make_quantizer`.

    ``train()``: the method's differentiable forward. ``eval()`` or :meth:`freeze`: the integer
    ladder ``code = #{t : x >= t}`` and the fixed-point decode table, exactly the design file's
    numbers (values are ``table / 2**frac_bits``).
    """

    def __init__(self, quantizer: str | Quantizer | Callable[[SampleStats], Quantizer] = "learned",
                 bits: int = 3, input_bits: int | None = None, *, sensor=None,
                 channels: int = 1, decoder: str = "embedding", width: int = 8,
                 black: float = 0.0, gain_dn_per_e: float = 0.0, read_noise_dn: float = 0.0,
                 generator: torch.Generator | None = None, **options):
        super().__init__()
        terms = {"input_bits": input_bits, "black": black, "gain_dn_per_e": gain_dn_per_e,
                 "read_noise_dn": read_noise_dn}
        if sensor is not None:
            terms.update(_sensor_terms(sensor))
            if input_bits is not None and input_bits != terms["input_bits"]:
                raise LayerError(f"ADC: input_bits={input_bits} but the sensor's samples have "
                                 f"{terms['input_bits']} bits")
        self.quantizer: Quantizer | None = None
        self.factory = None
        self.input_shape: tuple[int, ...] | None = None
        self.register_buffer("frozen_table", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("frozen_frac_bits", torch.tensor(0, dtype=torch.int64))
        if isinstance(quantizer, Quantizer):
            self.quantizer = quantizer
            self.input_bits = quantizer.input_bits
            return
        if isinstance(quantizer, str):
            if quantizer not in METHODS:
                raise LayerError(f"ADC: unknown quantizer {quantizer!r}; allowed: "
                                 f"{', '.join(METHODS)}, a Quantizer, or a callable "
                                 f"SampleStats -> Quantizer")
        elif not callable(quantizer):
            raise TypeError(f"ADC: quantizer must be a method name, a Quantizer or a callable, "
                            f"not {type(quantizer).__name__}")
        if terms["input_bits"] is None:
            raise LayerError("ADC: input_bits is needed (or sensor=, which knows it)")
        self.input_bits = int(terms["input_bits"])
        self.factory = quantizer
        self.spec = dict(bits=bits, channels=channels, decoder=decoder, width=width,
                         generator=generator, **options)
        self.terms = terms

    # -- calibration ----------------------------------------------------------------------------
    @property
    def is_calibrated(self) -> bool:
        return self.quantizer is not None

    @torch.no_grad()
    def calibrate(self, samples) -> "ADC":
        """Build the quantizer from the histogram of ``samples`` (integer DN ``[N, C, H, W]`` or
        any shape; values are clipped to the sample word). Calibrating again starts over."""
        if self.factory is None:
            raise LayerError("ADC: built from a ready Quantizer, it has nothing to calibrate")
        x = torch.as_tensor(samples).detach()
        t = self.terms
        stats = SampleStats.from_samples(x.cpu().numpy(), 2**self.input_bits - 1, t["black"],
                                         t["gain_dn_per_e"], t["read_noise_dn"])
        if isinstance(self.factory, str):
            s = self.spec
            per_example = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
            q = make_quantizer(self.factory, s["bits"], stats, self.input_bits,
                               decoder=s["decoder"], channels=s["channels"], width=s["width"],
                               features=per_example, generator=s["generator"],
                               **{k: v for k, v in s.items()
                                  if k not in ("bits", "decoder", "channels", "width",
                                               "generator")})
        else:
            q = self.factory(stats)
            if not isinstance(q, Quantizer):
                raise LayerError(f"ADC: the quantizer factory returned {type(q).__name__}, "
                                 f"not a learn.quant.Quantizer")
        self.quantizer = q.to(x.device)
        self.frozen_table = torch.zeros(0, dtype=torch.int64, device=x.device)
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a frozen ADC's integers have their own shapes: take them as they come
        for key, owner, attr in ((prefix + "frozen_table", self, "frozen_table"),
                                 (prefix + "quantizer.frozen", self.quantizer, "frozen")):
            if key in state_dict and owner is not None:
                setattr(owner, attr, torch.empty_like(state_dict[key]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _ready(self) -> Quantizer:
        if self.quantizer is None:
            raise LayerError("ADC: not calibrated yet: run the model on a first batch of sensor "
                             "samples (or call ADC.calibrate)")
        return self.quantizer

    # -- properties -----------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        return self._ready().bits

    @property
    def levels(self) -> int:
        return 2**self.bits

    @property
    def channels(self) -> int:
        """Decode channels ``D`` per sample."""
        return self._ready().channels

    @property
    def temperature(self) -> float:
        """Relaxation temperature of the soft methods (``bitwise``, ``gumbel``); anneal it."""
        return self._ready().temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self._ready().temperature = float(value)

    def threshold_parameters(self) -> list[nn.Parameter]:
        """Parameters trained with the thresholds' learning rate (see :func:`param_groups`)."""
        return self._ready().threshold_parameters()

    def thresholds(self) -> list[int]:
        """The integer thresholds the hardware compares with (strictly increasing)."""
        return [int(t) for t in self._ready().int_thresholds().cpu()]

    # -- forward --------------------------------------------------------------------------------
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """ADC codes of integer samples, int64, same shape as ``x``."""
        return self._ready().codes(torch.as_tensor(x))

    def int_values(self, x: torch.Tensor) -> torch.Tensor:
        """Decoded values in the design file's integers ``[N, C·D, H, W]`` (int64)."""
        _, frac, table = self.export_parts()
        vals = torch.as_tensor(table, device=self.frozen_table.device)[self.codes(x)]
        return _channels_first(vals)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw samples ``[N, C, H, W]`` → decoded ``[N, C·D, H, W]`` (float32)."""
        if x.ndim != 4:
            raise LayerError(f"ADC: expected channels-first samples [N, C, H, W], got shape "
                             f"{tuple(x.shape)}")
        if self.quantizer is None:
            self.calibrate(x)
        self.input_shape = tuple(x.shape[1:])
        if self.frozen_table.numel():
            vals = self.frozen_table[self.codes(x)].to(torch.float64) / 2.0**self.frozen_frac
            return _channels_first(vals.to(torch.float32))
        return _channels_first(self.quantizer(x))

    # -- freezing and export --------------------------------------------------------------------
    @property
    def frozen_frac(self) -> int:
        """Fraction bits of the frozen decode table."""
        return int(self.frozen_frac_bits)

    def freeze(self, table: bool = False) -> None:
        """Snap the thresholds to their integer export (the decode table may keep learning, so
        that the network finishes training on the hardware's codes); ``table=True`` also fixes
        the decode table at its fixed-point values."""
        q = self._ready()
        if not q.exportable:
            raise ExportError(f"ADC: method {q.method!r} has no integer export to freeze to")
        q.freeze()
        if table:
            _, frac, ints = q.export()
            self.freeze_to(q.int_thresholds(), frac, ints)

    def freeze_to(self, thresholds, frac_bits: int, table) -> None:
        """Hold exactly these integers: thresholds, decode ``table`` with ``frac_bits``."""
        q = self._ready()
        q.frozen = torch.as_tensor(np.asarray(thresholds), dtype=torch.int64,
                                   device=q.frozen.device)
        self.frozen_table = torch.as_tensor(np.asarray(table), dtype=torch.int64,
                                            device=self.frozen_table.device)
        self.frozen_frac_bits.fill_(int(frac_bits))
        for p in q.parameters():
            p.requires_grad_(False)

    def export_parts(self) -> tuple[list[int], int, np.ndarray]:
        """``(thresholds, frac_bits, int table [levels, D])`` of the design file."""
        q = self._ready()
        if not q.exportable:
            raise ExportError(f"method {q.method!r} is the full-precision reference, it has no "
                              f"integer thresholds to export; use a quantizer method")
        if self.frozen_table.numel():
            return self.thresholds(), self.frozen_frac, self.frozen_table.cpu().numpy()
        return q.export()


def _channels_first(vals: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W, D]`` → ``[N, C·D, H, W]`` (sample channel major, decode channel minor)."""
    n, c, h, w, d = vals.shape
    return vals.permute(0, 1, 4, 2, 3).reshape(n, c * d, h, w)


# -- optimiser groups ---------------------------------------------------------------------------
def _adcs(model: nn.Module) -> list[tuple[str, ADC]]:
    return [(name or type(m).__name__, m) for name, m in model.named_modules()
            if isinstance(m, ADC)]


def param_groups(model: nn.Module, lr_thresholds: float, lr_network: float, **options
                 ) -> list[dict]:
    """Optimiser parameter groups: ``network`` (every parameter but the thresholds, at
    ``lr_network``) and ``thresholds`` (the ADCs' threshold parameters, at ``lr_thresholds``;
    absent for fixed ladders). ``options`` (e.g. ``weight_decay``) go into both groups. The ADCs
    must be calibrated (run the model on a first batch)."""
    thr = []
    for name, adc in _adcs(model):
        if not adc.is_calibrated:
            raise LayerError(f"layer '{name}' (ADC) is not calibrated yet: run the model on a "
                             f"first batch of sensor samples before building the optimiser")
        thr += [p for p in adc.threshold_parameters() if p.requires_grad]
    ids = {id(p) for p in thr}
    net = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": net, "lr": lr_network, "name": "network", **options}]
    if thr:
        groups.append({"params": thr, "lr": lr_thresholds, "name": "thresholds", **options})
    return groups


# -- export -------------------------------------------------------------------------------------
def design_from_layers(adc: ADC, post: PostConv | None, name: str, guard_bits: int = 2,
                       output_bits: int = 24, provenance: dict | None = None) -> Design:
    """The design file of an ADC and (optionally) the POST layer that runs on its output."""
    thresholds, frac, table = adc.export_parts()
    q = adc.quantizer
    decode = Decode(width=q.width, frac_bits=int(frac), table=np.asarray(table, np.int64))
    mac = None
    if post is not None:
        if post.frozen is not None:
            mac, f, w = post.frozen
            if (f, w) != (int(frac), q.width):
                raise ExportError(f"the POST layer was frozen for a decode table with {f} "
                                  f"fraction bits, the ADC now exports {frac}: freeze again")
        else:
            mac = post.export(int(frac), q.width, guard_bits, output_bits)
    return Design(name=name, input_bits=q.input_bits, thresholds=tuple(int(t) for t in thresholds),
                  decode=decode, mac=mac, provenance=provenance or {})


def front_end(model: nn.Module, example=None, post: bool | None = None
              ) -> tuple[str, ADC, str | None, PostConv | None]:
    """Find the ADC and the POST layer that runs on its output: ``(adc name, adc, post name,
    post)``. The model is run once (eval mode, no gradient) on ``example`` (default: zeros of
    the shape the ADC last saw) to see which layer takes the ADC's output. ``post``: ``None``
    takes a POST layer when there is one; ``True`` requires one; ``False`` ignores it.
    Raises :class:`ExportError` naming the layer that cannot be exported and why."""
    what = type(model).__name__
    adcs = _adcs(model)
    if not adcs:
        first = next((n for n, m in model.named_modules() if n and not list(m.children())), None)
        why = f"its first layer '{first}' is not one" if first else "it has none"
        raise ExportError(f"{what} has no learn.ADC layer ({why}): the design file starts at "
                          f"the ADC, which must see the raw sensor samples")
    if len(adcs) > 1:
        raise ExportError(f"{what} has {len(adcs)} ADC layers ({', '.join(n for n, _ in adcs)});"
                          f" a design file holds one")
    adc_name, adc = adcs[0]
    if not adc.is_calibrated:
        raise ExportError(f"layer '{adc_name}' (ADC) is not calibrated: run the model on a "
                          f"first batch of sensor samples before exporting")
    q = adc.quantizer
    if not q.exportable:
        raise ExportError(f"layer '{adc_name}' (ADC, method {q.method!r}) cannot be exported: "
                          f"the full-precision reference has no integer thresholds")
    if example is None:
        if adc.input_shape is None:
            raise ExportError(f"layer '{adc_name}' (ADC) has not run yet: pass example= (a "
                              f"batch of the model's input)")
        example = torch.full((1, *adc.input_shape), float(q.lo),
                             device=adc.frozen_table.device)
    names = {id(m): (n or what) for n, m in model.named_modules()}
    calls: list[tuple[str, nn.Module, tuple]] = []
    adc_io: dict = {}

    def pre(m, args):
        calls.append((names[id(m)], m, args))

    def after_adc(m, args, out):
        adc_io.update(input=args[0], output=out, at=len(calls))

    hooks = [m.register_forward_pre_hook(pre) for m in model.modules()]
    hooks.append(adc.register_forward_hook(after_adc))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    except AdcforgeError:
        raise
    except Exception as e:  # the user's forward on the example
        raise ExportError(f"running {what} on an example of shape {tuple(example.shape)} to "
                          f"find the layer after the ADC failed ({type(e).__name__}: {e}); "
                          f"pass example= a batch of the model's input") from None
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if not adc_io:
        raise ExportError(f"layer '{adc_name}' (ADC) is not called by {what}.forward")
    start = next(i for i, c in enumerate(calls) if c[1] is adc)
    for n, m, _ in calls[:start]:
        if not (adc_name + ".").startswith(n + ".") and m is not model:
            raise ExportError(f"layer '{n}' ({type(m).__name__}) runs before the ADC "
                              f"'{adc_name}': the ADC must be the first layer, on the raw "
                              f"sensor samples")
    out = adc_io["output"]
    consumers = [(n, m) for n, m, args in calls[adc_io["at"]:]
                 if any(a is out for a in args)]
    posts = [(n, m) for n, m in consumers if isinstance(m, PostConv)]
    if post is False:
        return adc_name, adc, None, None
    if posts:
        post_name, layer = posts[0]
        return adc_name, adc, post_name, layer
    for n, m, args in calls[adc_io["at"]:]:
        if isinstance(m, PostConv):
            raise ExportError(f"layer '{n}' (POST layer) does not take the ADC's output "
                              f"directly (something runs between them): the hardware runs the "
                              f"POST layer on the decoded values")
    if post:
        if consumers:
            n, m = consumers[-1]  # the innermost module that took the ADC's output
            raise ExportError(f"layer '{n}' ({type(m).__name__}) after the ADC is not a POST "
                              f"layer (learn.PostConv / PostLinear): it has no integer export "
                              f"for the hardware")
        raise ExportError(f"no layer takes the ADC '{adc_name}' output as a module (a functional "
                          f"call?); the POST layer must be a learn.PostConv / PostLinear")
    return adc_name, adc, None, None


def export_design(model: nn.Module, name: str = "design", *, guard_bits: int = 2,
                  output_bits: int = 24, sensor=None, provenance: dict | None = None,
                  example=None, post: bool | None = None, path=None) -> Design:
    """Return (and with ``path`` write) the design file of ``model``'s front end.

    The thresholds and decode table of its :class:`ADC`, and the MAC layer of the POST layer
    (:class:`PostConv` / :class:`PostLinear`) when that layer takes the ADC's output
    (:func:`front_end`; ``post=True`` requires it, ``False`` leaves it out). ``guard_bits`` and
    ``output_bits`` are the MAC's (``docs/design-format.md``). ``sensor`` (a ``sim`` sensor or
    a preset name) and ``provenance`` go into the file's provenance. The design is validated as
    :func:`adcforge.design.load_design` would; anything the format refuses is an
    :class:`ExportError` naming the layer.
    """
    adc_name, adc, post_name, layer = front_end(model, example, post)
    prov = {"tool": "adcforge learn.export_design", "model": type(model).__name__,
            "adc_layer": adc_name, "method": adc.quantizer.method}
    if post_name is not None:
        prov["post_layer"] = post_name
    if sensor is not None:
        c = getattr(sensor, "config", sensor)
        prov["sensor"] = sensor if isinstance(sensor, str) else (getattr(c, "name", "") or "?")
    prov.update(provenance or {})
    try:
        design = design_from_layers(adc, layer, name, guard_bits, output_bits, prov)
    except ExportError as e:
        raise ExportError(f"layer '{post_name}': {e}") from None
    except ValueError as e:
        raise ExportError(f"layer '{post_name or adc_name}' cannot be exported: {e}") from None
    try:
        design = parse_design(design_to_dict(design), source="the design")
    except DesignError as e:
        where = post_name if post_name and "mac" in str(e) else adc_name
        raise ExportError(f"layer '{where}' cannot be exported: {e}") from None
    if path is not None:
        save_design(design, path)
    return design


def freeze(model: nn.Module, name: str = "design", **export_options) -> Design:
    """Snap the model's front end to its integer export and return that design: the ADC holds
    its integer thresholds and fixed-point decode table, the POST layer its MAC. From then on
    the front end computes the hardware's numbers exactly (train and eval; it no longer learns,
    the layers after it may). The ADC's integers travel in ``state_dict``; after loading one
    (into a calibrated model) call ``freeze`` again for the POST layer's integer forward.
    Options as :func:`export_design`."""
    design = export_design(model, name, **export_options)
    adc_name, adc, post_name, layer = front_end(model, export_options.get("example"),
                                                export_options.get("post"))
    adc.freeze_to(design.thresholds, design.decode.frac_bits, design.decode.table)
    if layer is not None:
        layer.freeze_to(design.mac, design.decode.frac_bits, design.decode.width)
    return design
