// The simulated board: the board top's RTL (Verilator) behind a pseudo-terminal.
//
// usage: simboard DIVISOR STATS_FILE
// Prints the pty's slave path on stdout, then runs forever. Bytes written to the pty are sent
// to the design's rx pin as 8N1 at DIVISOR cycles per bit; bytes the design sends on tx are
// decoded and written back to the pty. SIGUSR1 resets the design (a board reset); SIGTERM
// ends the run. Busy time runs at full speed; when both lines are idle the clock advances
// IDLE_CHUNK cycles per millisecond of waiting, so that the design's timeouts still expire.
// STATS_FILE receives "cycles rx_bytes tx_bytes resets" on exit and every 2^20 cycles.
#include "Vboard_top.h"
#include "verilated.h"

#include <csignal>
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

int main(int argc, char** argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s DIVISOR STATS_FILE\n", argv[0]); return 2; }
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
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
        cycles++;
    };
    auto do_reset = [&]() {
        top->rst = 1; top->rx = 1;
        for (int i = 0; i < 8; i++) tick();
        top->rst = 0;
    };
    auto write_stats = [&]() {
        FILE* f = fopen(stats_path, "w");
        if (f) { fprintf(f, "%llu %llu %llu %llu\n", cycles, rx_bytes, tx_bytes, resets); fclose(f); }
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
