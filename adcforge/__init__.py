"""adcforge: learned, task-specific image-sensor ADCs, from sensor model to FPGA."""

__version__ = "0.1.0"
