"""The board top: UART, the framed protocol (:mod:`boards.protocol`) and the ADC pipeline.

:class:`BoardTop` is clocked by the caller's ``sync`` domain (a PLL on a board, the harness in the
simulated board). Its ``rx``/``tx`` pins speak 8N1 at ``clk / divisor`` baud. The receive state
machine hunts for the sync word, checks header, length and CRC, streams samples into the
pipeline as they arrive, and writes results into a circular buffer (block RAM); a frame's
results are committed when its CRC is good and rolled back otherwise, so a response carries
either all of a frame's results or none. Thresholds loaded with ``LOAD_THRESHOLDS`` land in the
ladder's shadow bank and are committed (between samples) only with a good CRC. A frame that
stops arriving for ``timeout`` cycles is abandoned and answered with ``TIMEOUT``; a byte that
arrives while the receive FIFO is full marks the frame ``OVERFLOW``. Nothing waits forever
except for bytes: the board cannot wedge.

LEDs: ``led_activity`` blinks on every good frame, ``led_error`` on every error.
"""


from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from adcforge.design import Design
from hdl.pipeline import AdcPipeline

from .protocol import (MAX_PAYLOAD, MAX_SAMPLES, RESPONSE, STATUS_FIELDS, SYNC, Command, Status,
                       design_id, output_bytes, sample_bytes)
from .uart import UARTRx, UARTTx


def _crc16_taps():
    """For each bit of the next CRC register, the (crc bits, byte bits) it is the XOR of."""
    from .protocol import crc16_bitwise as crc16

    def run(crc, byte):
        c = crc ^ (byte << 8)
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        return c & 0xFFFF

    # the step without initial value is linear over GF(2): probe it with unit vectors
    assert crc16(b"1", 0) == run(0, ord("1"))
    taps = []
    for out in range(16):
        taps.append(([i for i in range(16) if run(1 << i, 0) >> out & 1],
                     [i for i in range(8) if run(0, 1 << i) >> out & 1]))
    return taps


_TAPS = _crc16_taps()


def crc16_step(crc, byte):
    """Return the CRC-16/CCITT-FALSE register after one byte (an Amaranth expression)."""
    bits = []
    for crc_taps, byte_taps in _TAPS:
        terms = [crc[i] for i in crc_taps] + [byte[i] for i in byte_taps]
        acc = terms[0]
        for t in terms[1:]:
            acc = acc ^ t
        bits.append(acc)
    return Cat(*bits)


class BoardTop(wiring.Component):
    """UART + protocol + ADC pipeline (runtime-writeable thresholds unless told otherwise).

    Parameters
    ----------
    design : Design
    divisor : int
        Clock cycles per UART bit (``clk_hz // baud``).
    timeout : int
        Cycles without a byte after which a started frame is abandoned.
    buffer_depth : int
        Result words the circular buffer holds (a power of two, at least ``2 * MAX_SAMPLES``).
    led_cycles : int
        Cycles an LED stays lit after an event.
    runtime_thresholds : bool
        Build the ladder with writeable thresholds (``LOAD_THRESHOLDS``); with ``False`` the
        design's thresholds are constants and ``LOAD_THRESHOLDS`` is answered ``UNSUPPORTED``.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    led_activity: Out(1)
    led_error: Out(1)

    def __init__(self, design: Design, *, divisor: int, timeout: int = 1 << 16,
                 buffer_depth: int = 2048, rx_fifo_depth: int = 32, resp_fifo_depth: int = 8,
                 led_cycles: int = 1 << 21, runtime_thresholds: bool = True):
        if buffer_depth & (buffer_depth - 1) or buffer_depth < 2 * MAX_SAMPLES:
            raise ValueError(f"buffer_depth must be a power of two of at least {2 * MAX_SAMPLES}, "
                             f"not {buffer_depth!r}")
        if not isinstance(timeout, int) or timeout < 16 * divisor:
            raise ValueError(f"timeout must be at least 16 bit times ({16 * divisor} cycles), "
                             f"not {timeout!r}")
        self.design = design
        self.divisor = divisor
        self.timeout = timeout
        self.buffer_depth = buffer_depth
        self.rx_fifo_depth = rx_fifo_depth
        self.resp_fifo_depth = resp_fifo_depth
        self.led_cycles = led_cycles
        self.runtime_thresholds = runtime_thresholds
        self.core = AdcPipeline(design, runtime_thresholds=runtime_thresholds)
        self.has_mac = hasattr(self.core, "outputs")
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d = self.design
        sb = sample_bytes(d)
        ob = output_bytes(d)
        n_thr = len(d.thresholds)
        spi = d.samples_per_inference
        n_out = d.mac.outputs if self.has_mac else 1
        width = max(d.bits, d.mac.output_bits if self.has_mac else 1)
        depth = self.buffer_depth
        ptr_bits = depth.bit_length()  # one more than the address: full and empty differ

        m.submodules.core = core = self.core
        m.submodules.uart_rx = urx = UARTRx(self.divisor)
        m.submodules.uart_tx = utx = UARTTx(self.divisor)
        m.submodules.rx_fifo = rxf = fifo.SyncFIFOBuffered(width=8, depth=self.rx_fifo_depth)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx),
                     rxf.w_data.eq(urx.o.payload), rxf.w_en.eq(urx.o.valid),
                     urx.o.ready.eq(rxf.w_rdy)]
        rxs_valid, rxs_data = rxf.r_rdy, rxf.r_data
        rxs_take = Signal()
        m.d.comb += rxf.r_en.eq(rxs_take)

        # -- counters ------------------------------------------------------------------------
        # error counters are 16 bits (zero-extended on the wire); frames and samples 32
        counters = {name: Signal(32 if name in ("frames_ok", "samples") else 16,
                                 name=f"n_{name}") for name in STATUS_FIELDS}
        counters["design_id"] = Const(design_id(d), 32)
        overflow_seen = Signal()
        with m.If(urx.overflow):
            m.d.sync += [counters["overflows"].eq(counters["overflows"] + 1),
                         overflow_seen.eq(1)]
        with m.If(urx.framing_error):
            m.d.sync += counters["framing_errors"].eq(counters["framing_errors"] + 1)

        # -- result buffer -------------------------------------------------------------------
        m.submodules.mem = mem = Memory(shape=width, depth=depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        wptr = Signal(ptr_bits)
        committed = Signal(ptr_bits)
        rptr = Signal(ptr_bits)
        written = Signal(range(MAX_SAMPLES * max(n_out, 1) + 1))
        # a registered "room left" flag keeps the buffer's pointer arithmetic off the pipeline's
        # stall path; the margin covers the one cycle it lags
        space = Signal()
        m.d.sync += space.eq((wptr - rptr)[:ptr_bits] < depth - 4)
        full = ~space
        mode = Signal()
        res_valid = Signal()
        res_data = Signal(width)
        if self.has_mac:
            m.d.comb += core.mode.eq(mode)
            m.d.comb += [res_valid.eq(Mux(mode, core.outputs.valid, core.codes.valid)),
                         res_data.eq(Mux(mode, core.outputs.payload, core.codes.payload.code)),
                         core.outputs.ready.eq(~full), core.codes.ready.eq(~full)]
        else:
            m.d.comb += [res_valid.eq(core.codes.valid), res_data.eq(core.codes.payload.code),
                         core.codes.ready.eq(~full)]
        m.d.comb += [wp.addr.eq(wptr[:ptr_bits - 1]), wp.data.eq(res_data),
                     wp.en.eq(res_valid & ~full)]
        with m.If(res_valid & ~full):
            m.d.sync += [wptr.eq(wptr + 1), written.eq(written + 1)]

        # -- response descriptors (receive side → transmit side), a small FIFO so that the
        # receiver never waits for a long answer to finish while bytes keep arriving ----------
        count_bits = (MAX_SAMPLES * max(n_out, 1)).bit_length()
        m.submodules.resp_fifo = respf = fifo.SyncFIFOBuffered(width=24 + count_bits,
                                                               depth=self.resp_fifo_depth)
        resp_pending = respf.r_rdy
        resp_cmd = respf.r_data[0:8]
        resp_seq = respf.r_data[8:16]
        resp_status = respf.r_data[16:24]
        resp_count = respf.r_data[24:]
        frame_count = Signal(count_bits)  # set when a frame ends, queued when it is answered

        # -- receive state machine -----------------------------------------------------------
        crc = Signal(16)
        rx_crc = Signal(16)
        cmd = Signal(8)
        seq = Signal(8)
        length = Signal(16)
        left = Signal(16)
        status = Signal(8)  # error decided while the frame arrives (OK: none yet)
        final = Signal(8)   # the frame's answer
        word = Signal(8 * sb)
        bidx = Signal(range(sb + 1))
        widx = Signal(range(n_thr + 1))
        sample = Signal(d.input_bits)
        pushed = Signal(range(MAX_SAMPLES + 1))
        expected = Signal.like(written)
        inf_pos = Signal(range(max(spi, 2)))
        idle = Signal(range(self.timeout + 1))
        commit_thr = Signal()
        drained = Signal()
        m.d.sync += drained.eq(written == expected)
        frame_ok = Signal()
        frame_err = Signal()

        if hasattr(core, "thr"):
            m.d.comb += [core.thr.addr.eq(widx), core.thr.data.eq(word),
                         core.thr.commit.eq(commit_thr)]
        m.d.comb += core.i.payload.eq(sample)

        crc_next = crc16_step(crc, rxs_data)
        word_next = Cat(word[8:], rxs_data) if sb > 1 else rxs_data
        is_samples = (cmd == Command.CODES.value) | (
            (cmd == Command.MAC.value) if self.has_mac else Const(0))

        def push_accounting():
            m.d.sync += pushed.eq(pushed + 1)
            if self.has_mac:
                with m.If(mode):
                    with m.If(inf_pos == spi - 1):
                        m.d.sync += [inf_pos.eq(0), expected.eq(expected + n_out)]
                    with m.Else():
                        m.d.sync += inf_pos.eq(inf_pos + 1)
                with m.Else():
                    m.d.sync += expected.eq(expected + 1)
            else:
                m.d.sync += expected.eq(expected + 1)

        def byte_state(then):
            """Consume one byte (``then`` runs with it) or time out."""
            m.d.comb += rxs_take.eq(1)
            with m.If(rxs_valid):
                m.d.sync += idle.eq(0)
                then()
            with m.Elif(idle == self.timeout):
                m.d.sync += [final.eq(Status.TIMEOUT.value), idle.eq(0)]
                m.next = "PAD"
            with m.Else():
                m.d.sync += idle.eq(idle + 1)

        with m.FSM(name="rx_fsm"):
            with m.State("HUNT"):
                m.d.comb += rxs_take.eq(1)
                with m.If(rxs_valid & (rxs_data == SYNC[0])):
                    m.next = "SYNC1"
            with m.State("SYNC1"):
                m.d.comb += rxs_take.eq(1)
                with m.If(rxs_valid):
                    with m.If(rxs_data == SYNC[1]):
                        m.d.sync += [crc.eq(0xFFFF), idle.eq(0), overflow_seen.eq(0),
                                     status.eq(Status.OK.value), pushed.eq(0), expected.eq(0),
                                     written.eq(0), widx.eq(0), bidx.eq(0), inf_pos.eq(0)]
                        m.next = "CMD"
                    with m.Elif(rxs_data != SYNC[0]):
                        m.next = "HUNT"
            with m.State("CMD"):
                def got_cmd():
                    m.d.sync += [cmd.eq(rxs_data), crc.eq(crc_next)]
                    if self.has_mac:
                        m.d.sync += mode.eq(rxs_data == Command.MAC.value)
                    m.next = "SEQ"
                byte_state(got_cmd)
            with m.State("SEQ"):
                def got_seq():
                    m.d.sync += [seq.eq(rxs_data), crc.eq(crc_next)]
                    m.next = "LEN0"
                byte_state(got_seq)
            with m.State("LEN0"):
                def got_len0():
                    m.d.sync += [length[:8].eq(rxs_data), crc.eq(crc_next)]
                    m.next = "LEN1"
                byte_state(got_len0)
            with m.State("LEN1"):
                def got_len1():
                    n = Cat(length[:8], rxs_data)
                    m.d.sync += [length[8:].eq(rxs_data), left.eq(n), crc.eq(crc_next)]
                    with m.If(n > MAX_PAYLOAD):
                        # a length that cannot be trusted: answer now and hunt again
                        m.d.sync += final.eq(Status.BAD_LENGTH.value)
                        m.next = "DRAIN0"
                    with m.Else():
                        ok_len = Signal()
                        with m.Switch(cmd):
                            with m.Case(Command.STATUS.value):
                                m.d.comb += ok_len.eq(n == 0)
                            with m.Case(Command.LOAD_THRESHOLDS.value):
                                m.d.comb += ok_len.eq(n == n_thr * sb)
                                if not hasattr(core, "thr"):
                                    m.d.sync += status.eq(Status.UNSUPPORTED.value)
                            with m.Case(Command.CODES.value):
                                m.d.comb += ok_len.eq((n <= MAX_SAMPLES * sb) & (n != 0) &
                                                      ((n[0] == 0) if sb == 2 else 1))
                            if self.has_mac:
                                with m.Case(Command.MAC.value):
                                    m.d.comb += ok_len.eq((n <= MAX_SAMPLES * sb) & (n != 0) &
                                                          ((n[0] == 0) if sb == 2 else 1))
                            with m.Default():
                                m.d.sync += status.eq(Status.UNKNOWN_COMMAND.value)
                                m.d.comb += ok_len.eq(1)
                        with m.If(~ok_len):
                            m.d.sync += status.eq(Status.BAD_LENGTH.value)
                        m.next = "LEN_DONE"
                byte_state(got_len1)
            with m.State("LEN_DONE"):
                with m.If(left == 0):
                    m.next = "CRC0"
                with m.Else():
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                def got_byte():
                    m.d.sync += [crc.eq(crc_next), word.eq(word_next), left.eq(left - 1)]
                    last_byte_of_word = bidx == sb - 1
                    with m.If(last_byte_of_word):
                        m.d.sync += bidx.eq(0)
                    with m.Else():
                        m.d.sync += bidx.eq(bidx + 1)
                    with m.If(last_byte_of_word & (status == Status.OK.value)):
                        with m.If(is_samples):
                            m.d.sync += sample.eq(word_next)
                            m.next = "PUSH"
                        with m.Elif(cmd == Command.LOAD_THRESHOLDS.value):
                            m.next = "THR"
                        with m.Elif(left == 1):
                            m.next = "CRC0"
                    with m.Elif(left == 1):
                        m.next = "CRC0"
                byte_state(got_byte)
            with m.State("PUSH"):
                m.d.comb += core.i.valid.eq(1)
                with m.If(core.i.ready):
                    push_accounting()
                    m.next = "AFTER_WORD"
            with m.State("THR"):
                if hasattr(core, "thr"):
                    m.d.comb += core.thr.we.eq(1)
                m.d.sync += widx.eq(widx + 1)
                m.next = "AFTER_WORD"
            with m.State("AFTER_WORD"):
                with m.If(left == 0):
                    m.next = "CRC0"
                with m.Else():
                    m.next = "PAYLOAD"
            with m.State("CRC0"):
                def got_crc0():
                    m.d.sync += rx_crc[:8].eq(rxs_data)
                    m.next = "CRC1"
                byte_state(got_crc0)
            with m.State("CRC1"):
                def got_crc1():
                    m.d.sync += rx_crc[8:].eq(rxs_data)
                    m.next = "CHECK"
                byte_state(got_crc1)
            with m.State("CHECK"):
                with m.If(overflow_seen):  # lost bytes explain a bad CRC: say why
                    m.d.sync += final.eq(Status.OVERFLOW.value)
                with m.Elif(rx_crc != crc):
                    m.d.sync += final.eq(Status.BAD_CRC.value)
                with m.Elif(mode & (inf_pos != 0)):
                    m.d.sync += final.eq(Status.BAD_LENGTH.value)
                with m.Else():
                    m.d.sync += final.eq(status)
                m.next = "PAD"
            with m.State("PAD"):
                # complete a partial inference with zero samples so that the MAC starts the
                # next frame clean; the results are rolled back with the frame
                with m.If(mode & (inf_pos != 0)):
                    m.d.comb += [core.i.valid.eq(1), core.i.payload.eq(0)]
                    with m.If(core.i.ready):
                        push_accounting()
                with m.Else():
                    m.next = "DRAIN0"
            with m.State("DRAIN0"):
                m.next = "DRAIN"  # lets the registered `drained` see this frame's final counts
            with m.State("DRAIN"):
                with m.If(drained):
                    with m.If(final == Status.OK.value):
                        m.d.sync += [committed.eq(wptr), frame_count.eq(written),
                                     counters["frames_ok"].eq(counters["frames_ok"] + 1),
                                     counters["samples"].eq(counters["samples"] + pushed)]
                        m.d.comb += frame_ok.eq(1)
                        with m.If(cmd == Command.LOAD_THRESHOLDS.value):
                            m.d.comb += commit_thr.eq(1)
                    with m.Else():
                        m.d.sync += [wptr.eq(committed), frame_count.eq(0)]
                        m.d.comb += frame_err.eq(1)
                        for st, name in ((Status.BAD_CRC, "crc_errors"),
                                         (Status.UNKNOWN_COMMAND, "unknown_commands"),
                                         (Status.BAD_LENGTH, "bad_lengths"),
                                         (Status.TIMEOUT, "timeouts")):
                            with m.If(final == st.value):
                                m.d.sync += counters[name].eq(counters[name] + 1)
                    m.next = "RESPOND"
            with m.State("RESPOND"):
                m.d.comb += [respf.w_data.eq(Cat(cmd | RESPONSE, seq, final, frame_count)),
                             respf.w_en.eq(1)]
                with m.If(respf.w_rdy):
                    m.next = "HUNT"

        # -- transmit state machine ----------------------------------------------------------
        t_cmd = Signal(8)
        t_seq = Signal(8)
        t_status = Signal(8)
        t_left = Signal(count_bits)
        t_len = Signal(16)
        t_crc = Signal(16)
        hidx = Signal(range(8))
        tb = Signal(range(max(ob, 4 * len(STATUS_FIELDS)) + 1))
        tx_byte = Signal(8)
        tx_go = Signal()
        m.d.comb += [utx.i.payload.eq(tx_byte), utx.i.valid.eq(tx_go), rp.addr.eq(rptr[:ptr_bits - 1])]
        tx_crc_next = crc16_step(t_crc, tx_byte)
        t_is_mac = (t_cmd == (Command.MAC.value | RESPONSE)) if self.has_mac else Const(0)
        status_len = 1 + 4 * len(STATUS_FIELDS)
        counter_words = Array(counters[name] for name in STATUS_FIELDS)
        # sign-extend a MAC output word to ob bytes; a code is one byte
        ext = Signal(8 * max(ob, 1))
        if self.has_mac:
            m.d.comb += ext.eq(Mux(t_is_mac, rp.data[:d.mac.output_bits].as_signed(),
                                   rp.data[:d.bits]))
        else:
            m.d.comb += ext.eq(rp.data[:d.bits])
        with m.FSM(name="tx_fsm"):
            with m.State("IDLE"):
                with m.If(resp_pending):
                    count_bytes = resp_count * (ob if self.has_mac else 1)
                    is_status_ok = ((resp_cmd == (Command.STATUS.value | RESPONSE)) &
                                    (resp_status == Status.OK.value))
                    if self.has_mac:
                        count_bytes = Mux(resp_cmd == (Command.MAC.value | RESPONSE),
                                          resp_count * ob, resp_count)
                    m.d.comb += respf.r_en.eq(1)
                    m.d.sync += [t_cmd.eq(resp_cmd), t_seq.eq(resp_seq),
                                 t_status.eq(resp_status), t_left.eq(resp_count),
                                 t_len.eq(Mux(is_status_ok, status_len, 1 + count_bytes)),
                                 t_crc.eq(0xFFFF), hidx.eq(0)]
                    m.next = "HDR"
            with m.State("HDR"):
                hdr = Array([Const(SYNC[0], 8), Const(SYNC[1], 8), t_cmd, t_seq, t_len[:8],
                             t_len[8:], t_status, Const(0, 8)])
                m.d.comb += [tx_byte.eq(hdr[hidx]), tx_go.eq(1)]
                with m.If(utx.i.ready):
                    with m.If(hidx >= 2):
                        m.d.sync += t_crc.eq(tx_crc_next)
                    m.d.sync += hidx.eq(hidx + 1)
                    with m.If(hidx == 6):
                        m.d.sync += tb.eq(0)
                        with m.If(t_status != Status.OK.value):
                            m.next = "CRC0"
                        with m.Elif(t_cmd == (Command.STATUS.value | RESPONSE)):
                            m.next = "STATUS"
                        with m.Elif(t_left != 0):
                            m.next = "FETCH"
                        with m.Else():
                            m.next = "CRC0"
            with m.State("FETCH"):
                m.next = "DATA"  # the read port's data is valid one cycle after its address
            with m.State("DATA"):
                if self.has_mac and ob > 1:
                    m.d.comb += tx_byte.eq(ext.word_select(tb[:max(1, (ob - 1).bit_length())], 8))
                    last = Mux(t_is_mac, tb == ob - 1, 1)
                else:
                    m.d.comb += tx_byte.eq(ext[:8])
                    last = Const(1)
                m.d.comb += tx_go.eq(1)
                with m.If(utx.i.ready):
                    m.d.sync += [t_crc.eq(tx_crc_next), tb.eq(tb + 1)]
                    with m.If(last):
                        m.d.sync += [tb.eq(0), rptr.eq(rptr + 1), t_left.eq(t_left - 1)]
                        with m.If(t_left == 1):
                            m.next = "CRC0"
                        with m.Else():
                            m.next = "FETCH"
            with m.State("STATUS"):
                m.d.comb += [tx_byte.eq(counter_words[tb[2:]].word_select(tb[:2], 8)),
                             tx_go.eq(1)]
                with m.If(utx.i.ready):
                    m.d.sync += [t_crc.eq(tx_crc_next), tb.eq(tb + 1)]
                    with m.If(tb == 4 * len(STATUS_FIELDS) - 1):
                        m.next = "CRC0"
            with m.State("CRC0"):
                m.d.comb += [tx_byte.eq(t_crc[:8]), tx_go.eq(1)]
                with m.If(utx.i.ready):
                    m.next = "CRC1"
            with m.State("CRC1"):
                m.d.comb += [tx_byte.eq(t_crc[8:]), tx_go.eq(1)]
                with m.If(utx.i.ready):
                    m.next = "IDLE"

        # -- LEDs: lit for about led_cycles after an event (a shared prescaler, small timers) --
        pre_bits = max(1, (self.led_cycles // 8).bit_length() - 1)
        prescaler = Signal(pre_bits)
        strobe = Signal()
        m.d.sync += [prescaler.eq(prescaler + 1), strobe.eq(prescaler == 0)]
        for led, event in ((self.led_activity, frame_ok), (self.led_error, frame_err)):
            timer = Signal(4)
            with m.If(event):
                m.d.sync += timer.eq(8)
            with m.Elif(strobe & (timer != 0)):
                m.d.sync += timer.eq(timer - 1)
            m.d.comb += led.eq(timer != 0)
        return m
