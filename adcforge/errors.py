"""Errors that the command line reports as one line, without a traceback."""


class AdcforgeError(Exception):
    """A problem with the user's input or environment; the message says what and how to fix it."""


class DesignError(AdcforgeError):
    """A design file is malformed or out of range."""


class ConfigError(AdcforgeError):
    """A YAML configuration (sensor, training, board) is malformed or out of range."""


class ToolchainError(AdcforgeError):
    """A tool the command needs (Verilator, Yosys, nextpnr, openFPGALoader) is missing or failed."""
