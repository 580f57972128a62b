"""Hardware in the loop against the simulated board (Verilator + pty), with link faults."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import boards
from adcforge.design import resolve_design
from boards.hil import Fault, HilRunner, run_hil
from boards.protocol import (MAX_PAYLOAD, MAX_SAMPLES, OVERHEAD_BYTES, Command, FrameParser,
                             Status, output_bytes, pack_frame, pack_words, sample_bytes,
                             unpack_words)

pytestmark = pytest.mark.xdist_group("simboard")

DESIGN = resolve_design("adc4_in12")
FRAME = 2 * MAX_SAMPLES + OVERHEAD_BYTES  # bytes of one full CODES frame for a 12-bit design
LOAD = 15 * 2 + OVERHEAD_BYTES            # the LOAD_THRESHOLDS frame sent first
STATUS = OVERHEAD_BYTES                   # the STATUS handshake


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(5)
    return rng.integers(0, 2**12, 3 * MAX_SAMPLES)


def assert_accounted(report, n):
    assert report["checked"] + report["failed"] + report["not_run"] == n
    assert report["samples"] == n


def test_hil_clean_link(samples):
    r = run_hil(DESIGN, samples)
    assert_accounted(r, len(samples))
    assert (r["checked"], r["mismatches"], r["retried"], r["failed"]) == (len(samples), 0, 0, 0)
    assert r["resends"] == 0 and r["error_responses"] == {}
    # framing costs 8 bytes per 1024-byte frame: the line carries > 95% useful samples
    assert r["line_efficiency"] > 0.95
    assert r["sim"]["rx_bytes"] == r["bytes_sent"]
    assert r["hw_accuracy"] is None and r["sw_accuracy"] is None


FAULTS = [
    pytest.param([Fault("drop", STATUS + LOAD + 300)], id="dropped byte"),
    pytest.param([Fault("corrupt", STATUS + LOAD + FRAME + 17)], id="corrupted byte"),
    pytest.param([Fault("garbage", STATUS + LOAD + FRAME)], id="garbage between frames"),
    pytest.param([Fault("garbage", STATUS + LOAD + 2)], id="garbage inside a header"),
    pytest.param([Fault("cut", STATUS + LOAD + 2 * FRAME + 500)], id="timeout (frame cut)"),
    pytest.param([Fault("rx_corrupt", 40 + 200)], id="corrupted answer"),
    pytest.param([Fault("rx_drop", 40 + 600)], id="dropped answer byte"),
    pytest.param([Fault("drop", STATUS + LOAD + 10), Fault("corrupt", STATUS + LOAD + FRAME + 5),
                  Fault("garbage", STATUS + LOAD + 2 * FRAME + 3)], id="three faults"),
]


@pytest.mark.parametrize("faults", FAULTS)
def test_hil_survives_fault(samples, faults):
    r = run_hil(DESIGN, samples, faults=faults)
    assert_accounted(r, len(samples))
    assert len(r["faults_injected"]) == len(faults)
    assert r["mismatches"] == 0 and r["failed"] == 0
    assert r["checked"] == len(samples)
    if faults == [Fault("garbage", STATUS + LOAD + FRAME)]:
        assert r["resends"] == 0  # garbage outside a frame is skipped by the board's sync hunt
    else:
        assert r["retried"] > 0 and r["resends"] > 0  # the hit frames were sent again


def test_hil_timeout_is_answered_by_the_board(samples):
    r = run_hil(DESIGN, samples, faults=[Fault("cut", STATUS + LOAD + 2 * FRAME + 500)])
    assert r["error_responses"].get("TIMEOUT", 0) >= 1


def test_hil_survives_a_board_reset_mid_run(samples):
    # whether the reset hits mid-frame depends on the pty's timing; either way the board was
    # reset once, and every sample is still checked, none wrong
    r = run_hil(DESIGN, samples, faults=[Fault("reset", STATUS + LOAD + FRAME + 400)])
    assert r["sim"]["resets"] == 1 and len(r["faults_injected"]) == 1
    assert_accounted(r, len(samples))
    assert r["checked"] == len(samples) and r["mismatches"] == 0


def test_hil_bounded_retries_account_for_every_sample(samples):
    # every copy of frame 2 is corrupted: it fails after max_tries sends, the rest is checked
    faults = [Fault("corrupt", STATUS + LOAD + FRAME * k + 20) for k in range(1, 12)]
    r = run_hil(DESIGN, samples, faults=faults, max_tries=3)
    assert_accounted(r, len(samples))
    assert r["failed"] >= MAX_SAMPLES and r["mismatches"] == 0


def test_hil_cli_writes_report(tmp_path, capsys):
    import json

    from adcforge.cli import main
    out = tmp_path / "hil.json"
    main(["hil", "--sim", "adc4_in12", "--photons", "10", "--samples", "1500",
          "--json", str(out)])
    r = json.loads(out.read_text())
    for key in ("checked", "mismatches", "retried", "failed", "samples_per_s", "hw_accuracy",
                "sw_accuracy", "codes_seen", "codes_total", "code_counts"):
        assert key in r, key
    assert (r["checked"], r["mismatches"], r["failed"]) == (1500, 0, 0)
    assert r["codes_total"] == 16 and sum(r["code_counts"]) == 1500
    assert r["codes_seen"] == sum(c > 0 for c in r["code_counts"])
    out = capsys.readouterr().out
    assert "checked 1500" in out and f"codes seen {r['codes_seen']} of 16" in out


def test_hil_picks_a_light_that_crosses_every_threshold(tmp_path, capsys):
    import json

    from adcforge.cli import main
    out = tmp_path / "hil.json"
    main(["hil", "--sim", "adc1_in8", "--samples", "2000", "--json", str(out)])
    r = json.loads(out.read_text())
    assert (r["codes_seen"], r["codes_total"], r["mismatches"]) == (2, 2, 0)
    assert r["photons"] > 10  # at the old default of 10 photons every sample gave code 0


def test_hil_on_a_simulated_board_with_sample_lanes(tmp_path):
    """`hil --sim --lanes 2`: the board top's pipeline takes two samples a clock (a gather in
    front, a scatter behind); a sample count that is not a multiple of the lanes (1499) ends
    inside a beat, and every answer equals the golden model."""
    import json

    from adcforge.cli import main
    out = tmp_path / "hil.json"
    main(["hil", "--sim", "adc4_in12", "--lanes", "2", "--samples", "1499", "--json", str(out)])
    r = json.loads(out.read_text())
    assert (r["checked"], r["mismatches"], r["failed"], r["lanes"]) == (1499, 0, 0, 2)
    assert "2 sample lanes" in r["transport"]


@pytest.mark.parametrize("args,message", [
    (["--board", "icebreaker", "--port", "/dev/null", "--lanes", "2"], "--lanes goes with --sim"),
    (["--sim", "--lanes", "0"], "lanes must be a positive integer, not 0"),
    (["--sim", "--lanes", "3", "--source", "pmod-ad1"], "--lanes goes with the UART's samples"),
])
def test_hil_lanes_bad_input_is_one_line(args, message, capsys):
    from adcforge.cli import main
    with pytest.raises(SystemExit) as e:
        main(["hil", "adc4_in12", *args])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert message in err and err.strip().count("\n") == 0


@pytest.mark.parametrize("args, message", [
    (["--board", "icebreaker"], "--board needs --port"),
    (["--sim"], "Verilator's model build needs `make`, which is not on PATH"),
], ids=["no port", "no make"])
def test_hil_missing_port_or_make_is_one_line_before_anything_runs(args, message, capsys,
                                                                   monkeypatch, tmp_path):
    """Said first: no samples drawn, no progress bar, nothing built."""
    from adcforge.cli import main
    monkeypatch.setenv("PATH", str(tmp_path))  # no make, no compiler
    with pytest.raises(SystemExit) as e:
        main(["hil", "adc4_in12", *args])
    assert e.value.code == 1
    out = capsys.readouterr()
    assert message in out.err and out.err.strip().count("\n") == 0
    assert "checking" not in out.out + out.err and "samples from" not in out.out + out.err


def test_hil_cli_needs_one_target(capsys):
    from adcforge.cli import main
    with pytest.raises(SystemExit) as e:
        main(["hil", "adc4_in12"])
    assert e.value.code == 1
    assert "choose one of --sim or --board" in capsys.readouterr().err


class WrongAnswers:
    """A board model that answers every frame, one result wrong in each data frame."""

    def __init__(self, design):
        from boards.pyboard import PyBoardTransport

        class Wrong(PyBoardTransport):
            def _answer(self, cmd, seq, payload):
                answer = super()._answer(cmd, seq, payload)
                if cmd not in (Command.CODES.value, Command.MAC.value):
                    return answer
                (frame,) = FrameParser(max_payload=MAX_PAYLOAD).feed(answer)
                body = bytearray(frame.payload)
                body[1] ^= 0x01  # the first result, after the status byte
                return pack_frame(frame.cmd, frame.seq, bytes(body))

        self.transport = Wrong(design)


@pytest.mark.parametrize("mode", ["codes", "mac"])
def test_runner_counts_every_wrong_answer_in_samples(mode):
    d = resolve_design("adc8_in16_mac")
    spi = d.samples_per_inference
    x = np.random.default_rng(2).integers(0, 2**16, spi * 100)
    r = HilRunner(WrongAnswers(d).transport, d, mode=mode).run(x)
    frames = r["frames_sent"] - 2  # less the STATUS handshake and the threshold load
    assert r["unit"] == "samples" and (r["checked"], r["failed"]) == (len(x), 0)
    if mode == "codes":  # one wrong code per frame
        assert r["mismatches"] == frames and r["mismatched_outputs"] is None
    else:  # one wrong output per frame: its whole inference counts
        assert r["mismatched_outputs"] == frames and r["mismatches"] == frames * spi
    assert r["first_mismatches"][0]["index"] == 0


def test_python_board_model_follows_loaded_thresholds_in_any_order():
    from adcforge.golden import ref_adc_pipeline
    from boards.pyboard import PyBoardTransport
    d = resolve_design("adc8_in16_mac")
    board = PyBoardTransport(d)
    loaded = [t + 7 for t in d.thresholds][::-1]  # shifted, and in reverse order
    sb = sample_bytes(d)
    board.write(pack_frame(Command.LOAD_THRESHOLDS.value, 1, pack_words(loaded, sb)))
    x = np.random.default_rng(4).integers(0, 2**16, d.samples_per_inference * 3)
    board.write(pack_frame(Command.MAC.value, 2, pack_words(x, sb)))
    frames = list(FrameParser(max_payload=MAX_PAYLOAD).feed(board.read(0.1)))
    assert [f.status for f in frames] == [Status.OK.value] * 2
    got = unpack_words(frames[1].payload[1:], output_bytes(d), signed=True,
                       bits=8 * output_bytes(d))
    want = ref_adc_pipeline(dataclasses.replace(d, thresholds=tuple(sorted(loaded))),
                            x.reshape(3, -1))["outputs"].ravel()
    assert list(got) == list(want)
    assert list(want) != list(ref_adc_pipeline(d, x.reshape(3, -1))["outputs"].ravel())


def test_runner_gives_up_on_a_silent_board_and_accounts_for_it():
    from boards.hil import Transport
    from boards.pyboard import PyBoardTransport

    class DiesAfter(Transport):
        """A board that answers the handshake and the first frames, then goes silent."""

        def __init__(self, inner, answers):
            self.inner, self.left, self.byte_rate = inner, answers, None

        def write(self, data):
            if self.left > 0:
                self.left -= 1
                self.inner.write(data)

        def read(self, timeout):
            return self.inner.read(timeout)

    x = np.random.default_rng(1).integers(0, 4096, 4 * MAX_SAMPLES)
    runner = HilRunner(DiesAfter(PyBoardTransport(DESIGN), 4), DESIGN, response_timeout=0.05,
                       silence_s=1.0)
    r = runner.run(x)
    assert r["aborted"].startswith(f"board silent after {2 * MAX_SAMPLES:,} checked samples, "
                                   f"at frame 2 of 4")
    assert r["aborted"].endswith("(no answer for 1 s)")
    assert (r["checked"], r["failed"], r["not_run"]) == (2 * MAX_SAMPLES, 0, 2 * MAX_SAMPLES)
    assert r["aborted_at_frame"] == 2


# -- a board that disappears mid-run (issue 13, part 6) ---------------------------------------


def test_hil_simulated_board_killed_mid_run_accounts_for_every_sample():
    x = np.random.default_rng(7).integers(0, 4096, 8 * MAX_SAMPLES)
    r = run_hil(DESIGN, x, faults=[Fault("vanish", STATUS + LOAD + 3 * FRAME + 100)])
    assert r["faults_injected"] == [f"vanish@{STATUS + LOAD + 3 * FRAME + 100}"]
    assert_accounted(r, len(x))
    assert r["aborted"].startswith("board disconnected after ")
    assert "(the serial port /dev/" in r["aborted"] and r["aborted"].endswith(" closed)")
    assert r["mismatches"] == 0 and r["failed"] == 0
    assert r["checked"] % MAX_SAMPLES == 0 and r["checked"] <= 3 * MAX_SAMPLES
    assert r["not_run"] >= 5 * MAX_SAMPLES
    assert r["aborted_at_frame"] == r["checked"] // MAX_SAMPLES
    assert f"{r['not_run']:,} of {len(x):,} samples not run" in r["aborted"]


def test_hil_cli_board_process_ended_writes_report_and_one_line(tmp_path, capsys, monkeypatch):
    """The issue's run: `hil --sim adc4_in12 --json r.json`, the board's process ends mid-run."""
    import json

    import boards.hil
    import boards.simboard
    from adcforge.cli import main

    started = []
    start = boards.simboard.SimulatedBoard.start
    monkeypatch.setattr(boards.simboard.SimulatedBoard, "start",
                        lambda self: started.append(self) or start(self))
    read = boards.hil.SerialTransport.read
    got = [0]

    def read_then_kill(self, timeout):
        data = read(self, timeout)
        got[0] += len(data)
        if got[0] > 2 * MAX_SAMPLES:  # a frame of codes answered, the next one coming: pull
            started[0].kill()
        return data

    monkeypatch.setattr(boards.hil.SerialTransport, "read", read_then_kill)
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit) as e:
        main(["hil", "--sim", "adc4_in12", "--photons", "10", "--samples", "8000",
              "--json", str(out)])
    assert e.value.code == 1
    r = json.loads(out.read_text())
    assert_accounted(r, 8000)
    assert r["checked"] >= MAX_SAMPLES and r["not_run"] > 0 and r["mismatches"] == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert err == [f"error: {r['aborted']}"]
    assert err[0].startswith(f"error: board disconnected after {r['checked']:,} checked samples")
    assert "SerialException" not in err[0] and "readiness" not in err[0]


class PtyBoard:
    """A board model (:class:`PyBoardTransport`) behind a pty. It answers ``frames`` frames,
    then none, and closes the port a second later (once the host has read those answers), as a
    USB serial adapter does when it is unplugged."""

    def __init__(self, design, frames):
        import os
        import threading
        import tty

        from boards.pyboard import PyBoardTransport
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.board = PyBoardTransport(design)
        self.left = frames
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import os
        import select
        import time
        quiet_since = time.monotonic() if self.left == 0 else None
        while quiet_since is None or time.monotonic() - quiet_since < 1.0:
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            for f in self.board.parser.feed(os.read(self.master, 4096)):
                if self.left > 0:
                    self.left -= 1
                    os.write(self.master, self.board._answer(f.cmd, f.seq, f.payload))
                    if self.left == 0:
                        quiet_since = time.monotonic()
        os.close(self.master)

    def close(self):
        import os
        self.thread.join(5)
        os.close(self.slave)


def test_hil_serial_port_that_closes_mid_run():
    from boards.hil import SerialTransport
    x = np.random.default_rng(3).integers(0, 4096, 6 * MAX_SAMPLES)
    board = PtyBoard(DESIGN, frames=4)  # STATUS, LOAD_THRESHOLDS, two frames of samples
    try:
        transport = SerialTransport(board.port)
        r = HilRunner(transport, DESIGN, response_timeout=0.2).run(x)
        transport.close()
    finally:
        board.close()
    assert_accounted(r, len(x))
    assert r["aborted"] == (f"board disconnected after {2 * MAX_SAMPLES:,} checked samples, at "
                            f"frame 2 of 6 (samples 1,024–1,535): 2,048 of 3,072 samples not run "
                            f"(the serial port {board.port} closed)")
    assert (r["checked"], r["failed"], r["not_run"]) == (2 * MAX_SAMPLES, 0, 4 * MAX_SAMPLES)


def test_hil_board_gone_before_the_first_sample_still_reports():
    from boards.hil import SerialTransport
    x = np.arange(1000) % 4096
    board = PtyBoard(DESIGN, frames=0)  # closes at once
    try:
        transport = SerialTransport(board.port)
        r = HilRunner(transport, DESIGN).run(x)
    finally:
        board.close()
    assert (r["checked"], r["not_run"]) == (0, 1000)
    assert r["aborted"].startswith("board disconnected after 0 checked samples, at frame 0 of 2")


def test_hil_board_without_its_port_says_so(capsys):
    from adcforge.cli import main
    with pytest.raises(SystemExit) as e:
        main(["hil", "--board", "icebreaker", "--port", "/dev/ttyNOPE9", "adc4_in12",
              "--samples", "10"])
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: no serial port /dev/ttyNOPE9: is the board plugged in?")


# -- POST designs on the simulated board (issue 13, part 4) ----------------------------------


DEMO_DESIGN = resolve_design(str(Path(boards.__file__).parent / "data" / "designs"
                                 / "demo_learned3.yaml"))


@pytest.mark.slow
def test_hil_demo_design_on_the_simulated_board_hardware_equals_software():
    """The demo's design (a learned 3-bit ADC with its POST classifier) on the simulated board:
    its test images streamed as MAC frames, the board's class scores equal to the golden
    model's, so hardware accuracy = software accuracy."""
    from sim.samples import task_frames
    task = task_frames(DEMO_DESIGN, n=48)
    r = run_hil(DEMO_DESIGN, task.samples.ravel(), labels=task.labels)
    n = task.samples.size
    assert (r["mode"], r["unit"]) == ("mac", "samples")
    assert_accounted(r, n)
    assert (r["checked"], r["mismatches"], r["mismatched_outputs"], r["failed"]) == (n, 0, 0, 0)
    assert r["accuracy_inferences"] == 48
    assert r["hw_accuracy"] == r["sw_accuracy"] and r["hw_accuracy"] > 0.3


@pytest.mark.slow
def test_hil_adc8_in16_mac_on_the_simulated_board_in_both_modes():
    d = resolve_design("adc8_in16_mac")
    spi = d.samples_per_inference
    x = np.random.default_rng(8).integers(0, 2**16, spi * 96)  # two frames of 48 inferences
    r = run_hil(d, x)
    assert (r["mode"], r["unit"]) == ("mac", "samples")
    assert_accounted(r, len(x))
    assert (r["checked"], r["mismatches"], r["mismatched_outputs"], r["failed"]) == \
        (len(x), 0, 0, 0)
    assert r["runtime_thresholds"] is True  # the simulated board's ladder is writeable
    r = run_hil(d, x[:700], mode="codes")
    assert (r["mode"], r["checked"], r["mismatches"], r["mismatched_outputs"]) == \
        ("codes", 700, 0, None)
