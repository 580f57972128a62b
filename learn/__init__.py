"""learn: differentiable ADC quantizers, the POST hardware layer, joint training on the simulated
sensor, bit-exact export to the design file, and the comparison experiments.

Entry points: :func:`learn.train.train` (``adcforge train``), :func:`learn.compare.compare`
(``adcforge compare``), :func:`learn.quantizers.make_quantizer`. See docs/learn.md.
"""
