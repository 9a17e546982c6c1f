// Steering UDP responses to the worker that waits for them.
//
// Every worker has its own SO_REUSEPORT socket on each UDP address, and the kernel picks the
// socket of a datagram by a hash of its source. A response to a request the proxy forwarded
// carries, in its top Via, the branch of the client transaction, which lives on the worker
// that sent the request; when the hash picks another worker, that worker has to parse the
// response and post it over, waking the owner. At 1,000 calls/s through two workers this
// cost each call three cross-thread wake-ups (docs/performance.md, "Calls").
//
// A classic BPF program attached to the socket group (SO_ATTACH_REUSEPORT_CBPF) looks into
// each datagram before a socket is chosen: a response ("SIP/" first) in which `marker`
// followed by one decimal digit d and '.' appears within the first few hundred bytes goes to
// socket d of the group, which is worker d's. Everything else — requests, keep-alives, a
// marker too far in, a digit with no socket — keeps the kernel's hash. The program only
// steers: the receiving worker still reads the branch and hands the response over when it is
// not its own, so a wrong guess costs what it always did.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <string_view>
#include <vector>

namespace transport {

// The program for `marker` (e.g. "z9hG4bKsw") in at most `instructions` instructions (the
// more, the further it looks). Only the marker's last four bytes are compared: a false match
// only steers. `scan_from` is the first offset the marker may start at.
std::vector<sock_filter> response_steering_program(std::string_view marker,
                                                   std::size_t instructions,
                                                   std::size_t scan_from = 12);

// How many marker positions such a program checks, i.e. how far into a response it looks.
std::size_t response_steering_window(std::string_view marker, std::size_t instructions);

// The size the server uses. The kernel translates classic BPF to eBPF, which must fit in
// 4,096 instructions: Linux 6.18 here refused a program of 3,000 classic instructions
// (ENOMEM) and took one of 2,500. 2,048 leaves room and still looks 292 bytes in, past the
// top Via of every response seen in the tests.
constexpr std::size_t kSteeringInstructions = 2048;

// Attaches the program to the SO_REUSEPORT group of socket `fd`; errno on failure.
int attach_response_steering(int fd, const std::vector<sock_filter>& program);

}  // namespace transport
