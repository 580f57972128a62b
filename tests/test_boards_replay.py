"""Recorded HIL traffic replayed: the bundled recordings (and any dropped into
``boards/data/recordings/``, a real board's too) re-run the host side and must reach the same
decisions, with every recorded answer equal to the golden model. No Verilator needed."""

import base64
import json
from pathlib import Path

import numpy as np
import pytest

import boards
from adcforge.design import resolve_design
from boards.hil import HilError, HilRunner
from boards.protocol import FrameParser, pack_frame
from boards.pyboard import PyBoardTransport
from boards.recording import (FORMAT, VERSION, RecordingTransport, ReplayDiverged, replay,
                              save_recording)

DATA = Path(boards.__file__).parent / "data"
RECORDINGS = sorted((DATA / "recordings").glob("*.json"))


def design_of(path):
    """The design a recording names: a bundled example, or ``boards/data/designs/NAME.yaml``."""
    name = json.loads(Path(path).read_text())["design"]
    local = DATA / "designs" / f"{name}.yaml"
    return resolve_design(str(local) if local.exists() else name)


def test_bundled_recordings_cover_each_board_family():
    boards_recorded = {json.loads(p.read_text())["board"] for p in RECORDINGS}
    assert {"icebreaker", "ulx3s"} <= boards_recorded


@pytest.mark.parametrize("path", RECORDINGS, ids=[p.stem for p in RECORDINGS])
def test_recording_replays_to_the_same_decisions(path):
    doc = json.loads(path.read_text())
    r = replay(path, design_of(path))
    assert (r["format"] if "format" in r else FORMAT) == FORMAT
    for key, value in doc["verdicts"].items():
        assert r[key] == value, key
    assert r["mismatches"] == 0 and r["replay"]["writes"] == r["frames_sent"]
    assert r["checked"] + r["failed"] + r["not_run"] == r["samples"]


def make_recording(tmp_path, design="adc4_in12", n=1500, transport=None):
    d = resolve_design(design)
    x = np.random.default_rng(3).integers(0, 2**d.input_bits, n)
    rec = RecordingTransport(transport or PyBoardTransport(d))
    runner = HilRunner(rec, d)
    report = runner.run(x)
    report["transport"] = "python board model"
    return save_recording(tmp_path / "r.json", rec, runner, x, report), d


def test_replay_cli(tmp_path, capsys):
    from adcforge.cli import main
    path, _ = make_recording(tmp_path)
    main(["hil", "--replay", str(path), "adc4_in12", "--json", str(tmp_path / "out.json")])
    out = capsys.readouterr().out
    assert "the host sent the same" in out and "checked 1500  mismatches 0" in out
    assert json.loads((tmp_path / "out.json").read_text())["replay"]["recording"] == str(path)


def edit(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def one_line_error(capsys, argv):
    from adcforge.cli import main
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    return err[0]


def test_replay_refuses_another_version_and_another_design(tmp_path, capsys):
    path, _ = make_recording(tmp_path)
    err = one_line_error(capsys, ["hil", "--replay", str(path), "adc1_in8"])
    assert err == (f"error: {path} was recorded with design 'adc4_in12' (id "
                   f"{json.loads(path.read_text())['design_id']}), not 'adc1_in8' (id "
                   f"{err.split('(id ')[-1]}")
    edit(path, lambda doc: doc.update(version=VERSION + 1))
    err = one_line_error(capsys, ["hil", "--replay", str(path), "adc4_in12"])
    assert err == (f"error: {path} is {FORMAT} version {VERSION + 1}; this adcforge replays "
                   f"version {VERSION}")
    path.write_text("{not json")
    err = one_line_error(capsys, ["hil", "--replay", str(path), "adc4_in12"])
    assert err.startswith(f"error: {path} is not an adcforge HIL recording (not JSON")
    err = one_line_error(capsys, ["hil", "--replay", str(tmp_path / "none.json"), "adc4_in12"])
    assert err == f"error: no recording {tmp_path / 'none.json'}"


def test_replay_catches_an_answer_that_differs_from_the_golden_model(tmp_path):
    path, d = make_recording(tmp_path)

    def wrong_code(doc):  # the first data answer, one code changed, its CRC recomputed
        for ev in doc["events"]:
            if ev[1] != "r":
                continue
            frames = FrameParser().feed(base64.b64decode(ev[2]))
            if frames and frames[0].cmd == 0x83:
                f = frames[0]
                body = bytearray(f.payload)
                body[1] ^= 1
                ev[2] = base64.b64encode(pack_frame(f.cmd, f.seq, bytes(body))).decode()
                return
    edit(path, wrong_code)
    with pytest.raises(ReplayDiverged, match="other verdicts: mismatches 1, recorded 0"):
        replay(path, d)


def test_replay_catches_a_host_that_decides_otherwise(tmp_path):
    path, d = make_recording(tmp_path)

    def corrupt_answer(doc):  # a broken answer: today's host would resend; the recorded did not
        for ev in doc["events"]:
            if ev[1] == "r" and len(base64.b64decode(ev[2])) > 100:
                data = bytearray(base64.b64decode(ev[2]))
                data[50] ^= 0xFF
                ev[2] = base64.b64encode(bytes(data)).decode()
                return
    edit(path, corrupt_answer)
    with pytest.raises(ReplayDiverged, match=r"the host sent frame cmd 0x03 seq \d+ \(1024 "
                                             r"payload bytes, CRC 0x[0-9a-f]{4}\) where the "
                                             r"recording has frame"):
        replay(path, d)


def test_recording_of_a_board_that_vanishes_replays(tmp_path):
    from boards.hil import BoardGone, Transport

    class Vanishes(Transport):
        def __init__(self, inner, reads):
            self.inner, self.left = inner, reads

        def write(self, data):
            self.inner.write(data)

        def read(self, timeout):
            data = self.inner.read(timeout)
            if data:
                self.left -= 1
                if self.left < 0:
                    raise BoardGone("the serial port /dev/ttyUSB1 closed")
            return data

    d = resolve_design("adc4_in12")
    path, _ = make_recording(tmp_path, n=4000, transport=Vanishes(PyBoardTransport(d), 2))
    r = replay(path, d)
    assert r["aborted"].startswith("board disconnected after ") and r["not_run"] > 0
    assert not issubclass(ReplayDiverged, BoardGone) and issubclass(ReplayDiverged, HilError)
