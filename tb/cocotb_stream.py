"""cocotb tests for the stream harness (`tb/harness.py`), configured by ``ADCFORGE_TB_CONFIG``.

Every result is compared with the golden model (``adcforge.golden``) bit for bit; a mismatch is
reported with its sample index, input, expected and got values.

Tests:
* ``bulk``: the configured batches (exhaustive sweeps, random streams, sensor frames, MAC
  worst cases), with random idle cycles and random back-pressure, Verilator at full speed.
* ``reset_midstream``: a stream interrupted by a reset; what follows must be exact.
* ``threshold_reload``: runtime-writeable thresholds replaced in the middle of a stream.
"""

import json
import os
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from adcforge.design import load_design
from adcforge.golden import code_coverage, ref_comparator_ladder_unsorted

from .harness import read_hex_words
from .stimulus import make_batch
from .targets import PipelineTarget, PostMultiplierTarget

CONFIG = json.loads(Path(os.environ["ADCFORGE_TB_CONFIG"]).read_text())
IS_PIPELINE = CONFIG["target"]["kind"] == "pipeline"
IS_RUNTIME = IS_PIPELINE and bool(CONFIG["target"].get("runtime", False))


def _target():
    t = CONFIG["target"]
    if t["kind"] == "pipeline":
        return PipelineTarget(load_design(t["design"]), runtime_thresholds=t.get("runtime", False),
                              mac_lanes=t.get("mac_lanes"), lanes=t.get("lanes", 1),
                              codes_path=t.get("codes_path", "stall"))
    return PostMultiplierTarget(t["width"], t["exponent_bits"], t["guard_bits"])


def _report(update: dict):
    path = Path(CONFIG["report"])
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(update)
    path.write_text(json.dumps(data, indent=1))


class TB:
    """Owns the clock, reset, and both ways of driving the harness (bulk and manual)."""

    def __init__(self, dut):
        self.dut = dut
        self.work = Path(CONFIG["work"])
        self.log = dut._log
        Clock(dut.clk, 10, unit="ns", impl="gpi").start()
        for name in ("load", "start", "manual", "m_in_valid", "m_out_ready", "out_sel"):
            getattr(dut, name).value = 0
        dut.m_in_payload.value = 0
        for name in ("mode", "thr__we", "thr__commit", "thr__addr", "thr__data"):
            if hasattr(dut, name):
                getattr(dut, name).value = 0

    async def reset(self, cycles=2):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def set_mode(self, mode: int):
        if hasattr(self.dut, "mode"):
            self.dut.mode.value = mode
            self.dut.out_sel.value = mode

    async def bulk(self, stim: np.ndarray, unit: int, outs_per_unit: int, valid_p: float,
                   ready_p: float, seed: int, copies: int, depth: int) -> tuple[np.ndarray, int]:
        """Stream ``stim`` through the DUT copies at full speed; return the raw outputs in order
        and the clock cycles taken.

        ``stim`` is cut into units of ``unit`` inputs that produce ``outs_per_unit`` outputs
        (one sample and one code; or one inference and its results); each copy takes an equal
        share of whole units (the last unit repeated to fill the copies).
        """
        wide = np.asarray(stim).dtype == object  # words of more than 63 bits
        stim = np.asarray(stim, dtype=object if wide else np.int64).reshape(-1, unit)
        units = len(stim)
        per = -(-units // copies)
        padded = np.concatenate([stim, np.repeat(stim[-1:], per * copies - units, axis=0)])
        if per * unit > depth or per * outs_per_unit > depth:
            raise ValueError(f"a batch holds at most {copies * depth} inputs and outputs")
        for k in range(copies):
            words = padded[k * per:(k + 1) * per].ravel().tolist()
            # New files, not old ones truncated: ext4 flushes a truncated file's blocks to disk
            # when it is closed again (auto_da_alloc), some milliseconds each.
            for path in (self.work / f"stim{k}.hex", self.work / f"resp{k}.hex"):
                path.unlink(missing_ok=True)
            (self.work / f"stim{k}.hex").write_text(("%x\n" * len(words)) % tuple(words))
        dut = self.dut
        dut.n_in.value = per * unit
        dut.n_out.value = per * outs_per_unit
        dut.valid_thresh.value = min(65535, int(valid_p * 65536))
        dut.ready_thresh.value = min(65535, int(ready_p * 65536))
        dut.seed.value = seed & 0xFFFFFFFF
        dut.load.value = 1
        await RisingEdge(dut.clk)
        dut.load.value = 0
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        await RisingEdge(dut.done)
        await ReadOnly()
        cycles = int(dut.cycles.value)
        await RisingEdge(dut.clk)
        parts = [read_hex_words((self.work / f"resp{k}.hex").read_bytes())
                 for k in range(copies)]
        if any(p.dtype == object for p in parts):  # results of more than 64 bits
            return np.concatenate([p.astype(object) for p in parts])[:units * outs_per_unit], \
                cycles
        return np.concatenate(parts)[:units * outs_per_unit], cycles


def _compare(name, inputs, expected, got, mismatches, limit=10):
    """Append mismatches (index, input, expected, got) and return how many values differ.

    ``inputs`` has one row per result row (a sample, or an inference's samples repeated for each
    of its outputs): the row of result ``k`` is what produced it."""
    expected = np.asarray(expected).reshape(len(got), -1)
    got = np.asarray(got).reshape(len(got), -1)
    inputs = np.asarray(inputs)
    bad = np.nonzero((expected != got).any(axis=1))[0]
    for k in bad[:limit]:
        mismatches.append({"batch": name, "index": int(k), "input": inputs[int(k)].tolist(),
                           "expected": expected[k].tolist(), "got": got[k].tolist()})
    return len(bad)


@cocotb.test()
async def bulk(dut):
    """Run the configured batches with random idle and back-pressure; compare bit for bit."""
    tb = TB(dut)
    target = _target()
    await tb.reset()
    checked = wrong = 0
    examples = []
    batches = []
    start = time.perf_counter()
    cycles_total = 0
    for cfg in CONFIG.get("batches", []):
        batch = make_batch(target, cfg)
        tb.set_mode(1 if batch["mode"] == "outputs" else 0)
        t0 = time.perf_counter()
        raw, cycles = await tb.bulk(batch["stim"], batch["unit"], batch["outs_per_unit"],
                                    cfg.get("valid_p", 1.0), cfg.get("ready_p", 1.0),
                                    cfg.get("seed", 1), target.spec.copies, target.spec.depth)
        got = batch["unpack"](raw)
        n_bad = _compare(cfg["name"], batch["inputs"], batch["expected"], got, examples)
        seconds = time.perf_counter() - t0
        checked += len(batch["expected"])
        wrong += n_bad
        cycles_total += cycles
        batches.append({"name": cfg["name"], "checked": len(batch["expected"]),
                        "samples": int(len(batch.get("samples", batch["stim"]))),
                        "mismatches": n_bad, "lanes": getattr(target, "lanes", 1),
                        "copies": target.spec.copies,
                        "cycles": cycles, "seconds": seconds})
        if isinstance(target, PipelineTarget):  # which codes the batch's samples exercised
            cover = code_coverage(target.design, batch["samples"])
            batches[-1].update(codes_seen=cover["codes_seen"], codes_total=cover["codes_total"])
        tb.log.info("%s: %d checked, %d mismatches, %d cycles, %.2f s", cfg["name"],
                    len(batch["expected"]), n_bad, cycles, seconds)
    elapsed = time.perf_counter() - start
    samples = sum(b["samples"] for b in batches)
    _report({"checked": checked, "mismatches": wrong, "samples": samples, "seconds": elapsed,
             "samples_per_s": samples / elapsed if elapsed else 0.0, "cycles": cycles_total,
             "batches": batches, "first_mismatches": examples})
    for e in examples:
        tb.log.error("mismatch in %s at sample %d: input %s expected %s got %s", e["batch"],
                     e["index"], e["input"], e["expected"], e["got"])
    assert wrong == 0, f"{wrong} of {checked} results differ from the golden model"


class ManualStream:
    """Drive the DUT beat by beat from Python: a source with random idle cycles and a sink
    with random back-pressure, both sampled at every rising edge."""

    def __init__(self, tb: TB, rng: random.Random, valid_p=0.8, ready_p=0.7):
        self.tb, self.rng, self.valid_p, self.ready_p = tb, rng, valid_p, ready_p
        self.cycle = 0

    async def run(self, samples, n_out, on_cycle=None, stop_after_out=None):
        """Send ``samples``; return ([(accept cycle, sample)], [outputs])."""
        dut = self.tb.dut
        dut.manual.value = 1
        pending = list(samples)
        accepted, outputs = [], []
        valid = False
        while len(outputs) < n_out:
            if stop_after_out is not None and len(outputs) >= stop_after_out:
                break
            if not valid and pending and self.rng.random() < self.valid_p:
                valid = True
            dut.m_in_valid.value = int(valid)
            dut.m_in_payload.value = int(pending[0]) if valid else 0
            dut.m_out_ready.value = int(self.rng.random() < self.ready_p)
            if on_cycle is not None:
                on_cycle(self.cycle)
            await FallingEdge(dut.clk)  # the harness takes copy 0's inputs on the falling edge
            await ReadOnly()
            took_in = valid and int(dut.m_in_ready.value)
            took_out = int(dut.m_out_valid.value) and int(dut.m_out_ready.value)
            if took_out:
                outputs.append(int(dut.m_out_payload.value))
            await RisingEdge(dut.clk)
            if took_in:
                accepted.append((self.cycle, pending.pop(0)))
                valid = False
            self.cycle += 1
            if self.cycle > 50 * (len(samples) + n_out) + 1000:
                raise AssertionError("the stream stalled: no progress")
        dut.m_in_valid.value = 0
        return accepted, outputs


@cocotb.test(skip=not IS_PIPELINE)
async def reset_midstream(dut):
    """Reset while samples are in flight; the stream after the reset must be exact."""
    tb = TB(dut)
    target = _target()
    await tb.reset()
    tb.set_mode(0)
    rng = random.Random(CONFIG.get("seed", 1))
    d = target.design
    top = 2**d.input_bits
    lanes = target.lanes  # samples per stream word
    first = [rng.randrange(top) for _ in range(200 // lanes * lanes)]
    words = [int(w) for w in target.pack(first)]
    stream = ManualStream(tb, rng)
    await stream.run(words, len(words), stop_after_out=60 // lanes)  # leaves samples in flight
    await tb.reset()
    second = [rng.randrange(top) for _ in range(300 // lanes * lanes)]
    words = [int(w) for w in target.pack(second)]
    _, got = await stream.run(words, len(words))
    codes, values = target.unpack_codes(np.array(got, dtype=object))
    exp = target.reference_codes(np.array(second))
    assert codes.tolist() == exp["codes"].tolist(), "codes after a mid-stream reset differ"
    assert values.tolist() == exp["values"].tolist(), "decoded values after a reset differ"
    _report({"reset_midstream": {"checked": len(second), "mismatches": 0}})


@cocotb.test(skip=not IS_RUNTIME)
async def threshold_reload(dut):
    """Load new thresholds, in no particular order, in the middle of a stream; each sample sees
    the old or the new set according to the cycle it was accepted (see `ComparatorLadder`),
    never a mixture, and the new set counts as its ones-count."""
    tb = TB(dut)
    target = _target()
    await tb.reset()
    tb.set_mode(0)
    d = target.design
    rng = random.Random(CONFIG.get("seed", 2))
    top = 2**d.input_bits
    old = list(d.thresholds)
    new = rng.sample(range(1, top), len(old))  # unsorted: the ones-count encoder's claim
    if len(new) > 1 and new == sorted(new):
        new.reverse()
    lanes = target.lanes  # samples per stream word: one beat switches all of them
    samples = [rng.randrange(top) for _ in range(600 // lanes * lanes)]
    words = [int(w) for w in target.pack(samples)]
    commit_cycle = []
    schedule = {}
    for k, t in enumerate(new):  # writes from cycle 100 on, commit after them
        schedule[100 + k] = ("we", k, t)
    schedule[100 + len(new)] = ("commit",)

    def on_cycle(cycle):
        action = schedule.get(cycle)
        dut.thr__we.value = 0
        dut.thr__commit.value = 0
        if action is None:
            return
        if action[0] == "we":
            dut.thr__we.value = 1
            dut.thr__addr.value = action[1]
            dut.thr__data.value = action[2]
        else:
            dut.thr__commit.value = 1
            commit_cycle.append(cycle)

    stream = ManualStream(tb, rng)
    accepted, got = await stream.run(words, len(words), on_cycle=on_cycle)
    dut.thr__we.value = 0
    dut.thr__commit.value = 0
    codes, _ = target.unpack_codes(np.array(got, dtype=object))
    c = commit_cycle[0]
    expected = [int(ref_comparator_ladder_unsorted(x, old if cyc <= c + 1 else new))
                for k, (cyc, _) in enumerate(accepted)
                for x in samples[k * lanes:(k + 1) * lanes]]
    assert codes.tolist() == expected, "codes around a threshold reload differ"
    n_new = lanes * sum(cyc > c + 1 for cyc, _ in accepted)
    _report({"threshold_reload": {"checked": len(samples), "after_reload": n_new,
                                  "mismatches": 0}})
