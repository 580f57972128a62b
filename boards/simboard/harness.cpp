// The simulated board: the board top's RTL (Verilator) behind a pseudo-terminal.
//
// usage: simboard DIVISOR STATS_FILE
// Prints the pty's slave path on stdout, then runs forever. Bytes written to the pty are sent
// to the design's rx pin as 8N1 at DIVISOR cycles per bit; bytes the design sends on tx are
// decoded and written back to the pty. SIGUSR1 resets the design (a board reset); SIGTERM
// ends the run. Busy time runs at full speed; when both lines are idle the clock advances
// IDLE_CHUNK cycles per millisecond of waiting, so that the design's timeouts still expire.
// STATS_FILE receives "cycles rx_bytes tx_bytes resets" on exit and every 2^20 cycles.
//
// Built with -DPMOD_AD1 (a board top with the Pmod AD1 source, boards/pmod_ad1.py): usage
// simboard DIVISOR STATS_FILE CLOCK_NS SIGNAL, and an AD7476A model drives the top's adc_sdata
// from its adc_cs_n and adc_sclk (the C++ twin of boards.pmod_ad1.AD7476AModel): CS falling
// samples SIGNAL ("sine": a full-scale 1 kHz sine of the simulated time plus +-2 LSB of noise;
// "count": conversion k reads k mod 4096), drives the first leading zero after t3; each SCLK
// falling edge holds the old bit for t7, then a pseudo-random level until t4, then the next
// bit (4 zeros, 12 bits MSB first); the 16th falling edge and CS rising three-state the line
// (pseudo-random). CLOCK_NS is the board clock's period the data sheet's times are counted in.
// Every breach of the converter's timing (SCLK over 20 MHz or beyond 40/60, CS to SCLK setup,
// a conversion of other than 16 SCLKs, CS high under t1, quiet time, acquisition time, over
// 1 M samples/s) counts as a violation; STATS_FILE then also gets "conversions violations
// mask" (mask: which checks failed, bit i = VIOLATION_NAMES[i] in boards/simboard).
#include "Vboard_top.h"
#include "verilated.h"

#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t reset_request = 0;
static volatile sig_atomic_t stop_request = 0;
static void on_usr1(int) { reset_request = 1; }
static void on_term(int) { stop_request = 1; }

static const unsigned long IDLE_CHUNK = 2000;

#ifdef PMOD_AD1
// AD7476A data sheet (Rev. F) Table 4, in ns
static const double T_QUIET = 50, T1 = 10, T2 = 10, T3 = 22, T4 = 40, T7 = 7, T8 = 36,
                    T_ACQ = 250, SCLK_MIN_PERIOD = 50, MARK = 0.4, CONVERSION_MIN = 1000;
enum { V_SCLK_FAST, V_MARK, V_SETUP, V_BITS, V_CS_HIGH, V_QUIET, V_ACQ, V_RATE, V_SCLK_LOW,
       V_COUNT };

struct Ad7476a {
    double tclk;            // ns per board clock cycle
    bool count_signal;
    int cs = 1, sclk = 1;
    int falls = 0;
    unsigned frame = 0;     // the 12-bit value; bit i of the 16-bit frame is (frame >> (15 - i))
    int kind = 0;           // the line's last event: 0 three-state, 1 CS fell, 2 SCLK fell, 3 the 16th
    double t_event = 0;
    int old_bit = 0, new_bit = 0;
    double t_cs_fall = -1, t_cs_rise = -1, t_16th = -1, t_track = -1, t_fall = -1, t_rise = -1;
    unsigned long long conversions = 0, violations = 0;
    unsigned mask = 0;
    uint32_t lcg = 12345;

    int noise() { lcg = lcg * 1664525u + 1013904223u; return (int)(lcg >> 31); }
    int bit(int i) const { return (int)((frame >> (15 - i)) & 1); }
    void violate(int what) { violations++; mask |= 1u << what; }
    unsigned sample(double t_ns) {
        if (count_signal) return (unsigned)(conversions & 4095);
        double v = 2047.5 + 2040.0 * std::sin(2 * M_PI * 1e3 * t_ns * 1e-9);
        lcg = lcg * 1664525u + 1013904223u;
        v += (double)((int)(lcg >> 29) - 4) * 0.5;  // -2 .. +1.5 LSB
        return (unsigned)std::lround(std::fmin(4095.0, std::fmax(0.0, v)));
    }
    // the front end's outputs after the clock edge at cycle c
    void observe(unsigned long long c, int cs_n, int sclk_now) {
        double t = (double)c * tclk;
        if (cs && !cs_n) {                 // CS falls: sample, convert, the first leading zero
            if (!sclk_now) violate(V_SCLK_LOW);
            if (t_cs_rise >= 0 && t - t_cs_rise < T1) violate(V_CS_HIGH);
            if (t_16th >= 0 && t - (t_16th + T8) < T_QUIET) violate(V_QUIET);
            if (t_track >= 0 && t - t_track < T_ACQ) violate(V_ACQ);
            if (t_cs_fall >= 0 && t - t_cs_fall < CONVERSION_MIN - 1e-6) violate(V_RATE);
            frame = sample(t) & 4095;
            conversions++;
            t_cs_fall = t; falls = 0; t_fall = t_rise = t_16th = t_track = -1;
            kind = 1; t_event = t; new_bit = bit(0);
        } else if (!cs && cs_n) {          // CS rises
            if (falls != 16) violate(V_BITS);
            t_cs_rise = t; kind = 0; t_event = t;
        }
        if (!cs_n && sclk && !sclk_now) {  // SCLK falls
            if (t_fall < 0) {
                if (t - t_cs_fall < T2) violate(V_SETUP);
            } else {
                double period = t - t_fall, high = t - t_rise, low = t_rise - t_fall;
                if (period < SCLK_MIN_PERIOD - 1e-6) violate(V_SCLK_FAST);
                if (std::fmin(high, low) < MARK * period - 1e-6) violate(V_MARK);
            }
            falls++; t_fall = t;
            if (falls < 16) { kind = 2; t_event = t; old_bit = bit(falls - 1); new_bit = bit(falls); }
            else if (falls == 16) { kind = 3; t_event = t; old_bit = bit(15); t_16th = t; }
            else violate(V_BITS);
        }
        if (!cs_n && !sclk && sclk_now) {  // SCLK rises
            t_rise = t;
            if (falls == 13) t_track = t;  // the track-and-hold goes back to track
        }
        cs = cs_n; sclk = sclk_now;
    }
    // SDATA as the FPGA reads it at the clock edge of cycle c
    int line(unsigned long long c) {
        double dt = (double)c * tclk - t_event;
        switch (kind) {
        case 1: return dt >= T3 ? new_bit : noise();
        case 2: return dt < T7 ? old_bit : (dt >= T4 ? new_bit : noise());
        case 3: return dt < T7 ? old_bit : noise();
        default: return noise();
        }
    }
};
#endif

int main(int argc, char** argv) {
#ifdef PMOD_AD1
    if (argc < 5) { fprintf(stderr, "usage: %s DIVISOR STATS_FILE CLOCK_NS SIGNAL\n", argv[0]); return 2; }
    Ad7476a adc;
    adc.tclk = atof(argv[3]);
    adc.count_signal = strcmp(argv[4], "count") == 0;
    if (!(adc.tclk > 0) || (!adc.count_signal && strcmp(argv[4], "sine") != 0)) {
        fprintf(stderr, "CLOCK_NS must be positive and SIGNAL sine or count\n"); return 2;
    }
#else
    if (argc < 3) { fprintf(stderr, "usage: %s DIVISOR STATS_FILE\n", argv[0]); return 2; }
#endif
    const int div = atoi(argv[1]);
    const char* stats_path = argv[2];
    Verilated::commandArgs(1, argv);

    int mfd = posix_openpt(O_RDWR | O_NOCTTY);
    if (mfd < 0 || grantpt(mfd) || unlockpt(mfd)) { perror("pty"); return 1; }
    const char* name = ptsname(mfd);
    int sfd = open(name, O_RDWR | O_NOCTTY);  // held open: the master never sees a hang-up
    struct termios t;
    tcgetattr(sfd, &t);
    cfmakeraw(&t);
    tcsetattr(sfd, TCSANOW, &t);
    fcntl(mfd, F_SETFL, fcntl(mfd, F_GETFL) | O_NONBLOCK);
    signal(SIGUSR1, on_usr1);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    printf("%s\n", name);
    fflush(stdout);

    Vboard_top* top = new Vboard_top;
    unsigned long long cycles = 0, rx_bytes = 0, tx_bytes = 0, resets = 0;
    auto tick = [&]() {
#ifdef PMOD_AD1
        top->adc_sdata = adc.line(cycles + 1);  // what the coming edge reads
#endif
#ifdef ADC_DOMAIN
        // the pipeline's clock at twice the board clock, its edges between the board clock's
        top->clk = 0; top->adc_clk = 1; top->eval();
        top->clk = 1; top->adc_clk = 0; top->eval();
        top->adc_clk = 1; top->eval();
        top->adc_clk = 0; top->eval();
#else
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
#endif
        cycles++;
#ifdef PMOD_AD1
        adc.observe(cycles, top->adc_cs_n, top->adc_sclk);
#endif
    };
    auto do_reset = [&]() {
        top->rst = 1; top->rx = 1;
#ifdef ADC_DOMAIN
        top->adc_rst = 1;
#endif
        for (int i = 0; i < 8; i++) tick();
        top->rst = 0;
#ifdef ADC_DOMAIN
        top->adc_rst = 0;
#endif
    };
    auto write_stats = [&]() {
        FILE* f = fopen(stats_path, "w");
        if (f) {
#ifdef PMOD_AD1
            fprintf(f, "%llu %llu %llu %llu %llu %llu %u\n", cycles, rx_bytes, tx_bytes, resets,
                    adc.conversions, adc.violations, adc.mask);
#else
            fprintf(f, "%llu %llu %llu %llu\n", cycles, rx_bytes, tx_bytes, resets);
#endif
            fclose(f);
        }
    };
    top->rx = 1;
    do_reset();

    unsigned char in[4096]; int in_len = 0, in_pos = 0;
    // rx driver: shifting a frame of 10 bits onto the rx pin
    int drv_bit = -1, drv_timer = 0; unsigned drv_frame = 0;
    // tx decoder
    int dec_state = 0, dec_timer = 0, dec_bit = 0; unsigned dec_byte = 0;
    unsigned char out[4096]; int out_len = 0;
    unsigned long idle = 0;

    while (!stop_request) {
        if (reset_request) { reset_request = 0; resets++; do_reset(); dec_state = 0; drv_bit = -1; top->rx = 1; }
        if (in_pos == in_len && drv_bit < 0 && (cycles & 15) == 0) {  // a syscall, not every cycle
            ssize_t n = read(mfd, in, sizeof in);
            if (n > 0) { in_len = (int)n; in_pos = 0; }
        }
        // drive rx
        if (drv_bit < 0 && in_pos < in_len) {
            drv_frame = (1u << 9) | ((unsigned)in[in_pos++] << 1);  // stop, data, start (LSB first)
            drv_bit = 0; drv_timer = div; rx_bytes++;
            top->rx = drv_frame & 1;
        }
        tick();
        if (drv_bit >= 0 && --drv_timer == 0) {
            drv_bit++;
            if (drv_bit == 10) { drv_bit = -1; top->rx = 1; }
            else { drv_timer = div; top->rx = (drv_frame >> drv_bit) & 1; }
        }
        // decode tx
        int txv = top->tx;
        if (dec_state == 0) {
            if (!txv) { dec_state = 1; dec_timer = div / 2; }
        } else if (--dec_timer == 0) {
            if (dec_state == 1) {           // middle of the start bit
                if (txv) dec_state = 0; else { dec_state = 2; dec_bit = 0; dec_byte = 0; dec_timer = div; }
            } else if (dec_state == 2) {    // data bits
                dec_byte |= (unsigned)txv << dec_bit;
                dec_timer = div;
                if (++dec_bit == 8) dec_state = 3;
            } else {                        // stop bit
                if (txv) { out[out_len++] = (unsigned char)dec_byte; tx_bytes++; }
                dec_state = 0;
            }
        }
        if (out_len && (out_len == (int)sizeof out || dec_state == 0)) {
            int off = 0;
            while (off < out_len) {
                ssize_t n = write(mfd, out + off, out_len - off);
                if (n > 0) off += (int)n;
                else { struct pollfd p = {mfd, POLLOUT, 0}; poll(&p, 1, 10); }
            }
            out_len = 0;
        }
        bool busy = drv_bit >= 0 || in_pos < in_len || dec_state != 0 || !txv;
#ifdef PMOD_AD1
        // converting: a burst of samples is under way (the next CS fall is due)
        busy = busy || !top->adc_cs_n || (double)cycles * adc.tclk - adc.t_cs_fall < 20000.0;
#endif
        idle = busy ? 0 : idle + 1;
        if (idle > 50u * (unsigned)div) {
            struct pollfd p = {mfd, POLLIN, 0};
            if (poll(&p, 1, 1) == 0) {
                for (unsigned long i = 0; i < IDLE_CHUNK && top->tx; i++) tick();
            }
            idle = 0;
        }
        if ((cycles & ((1u << 20) - 1)) == 0) write_stats();
    }
    write_stats();
    top->final();
    delete top;
    return 0;
}
