"""The names of the quantizer methods: one list for the trainer, the command line and compare.

Kept free of torch so that the command line can name them without loading it.
"""

METHODS = ("learned", "bitwise", "gumbel", "hist", "uniform", "uniform-full", "sqrt", "lloyd",
           "lsq", "lsqplus", "fp", "fixed")
COMPARED_METHODS = tuple(m for m in METHODS if m != "fixed")  # 'fixed' needs its own ladder
