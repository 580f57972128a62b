"""Amaranth generators of the ADC pipeline (the submodules import Amaranth; this package does not)."""

# the pipeline's codes-path handshakes (hdl.pipeline.AdcPipeline's codes_path), named here so
# that the command line offers them without loading Amaranth
CODES_PATH_NAMES = ("stall", "ready", "fifo")
