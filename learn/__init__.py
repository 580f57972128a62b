"""learn: differentiable ADC quantizers, the POST hardware layer, joint training on the simulated
sensor, bit-exact export to the design file, and the comparison experiments.

Entry points: :func:`learn.train.train` (``adcforge train``), :func:`learn.compare.compare`
(``adcforge compare``), :func:`learn.quant.make_quantizer`. See docs/learn.md.

For your own network (:mod:`learn.api`): :class:`ADC` and :class:`PostConv` /
:class:`PostLinear` are ``torch.nn`` layers to put at its front; :func:`param_groups` splits
threshold and network learning rates; :func:`freeze` snaps the front end to its integers and
:func:`export_design` writes its design file. They load on first use (``import learn`` stays
light for the command line).
"""

_API = ("ADC", "PostConv", "PostLinear", "LayerError", "ExportError", "export_design", "freeze",
        "param_groups", "front_end")

__all__ = list(_API)


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'learn' has no attribute {name!r}")
