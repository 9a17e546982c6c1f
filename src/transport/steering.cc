#include "transport/steering.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

namespace transport {

namespace {

constexpr std::size_t kMaxInstructions = BPF_MAXINSNS;
// Only the marker's last bytes are compared: one load and one compare per position, so the
// program looks further in. A false match costs nothing but a steer to the wrong worker.
constexpr std::size_t kComparedBytes = 4;

std::string_view compared(std::string_view marker) {
  return marker.size() > kComparedBytes ? marker.substr(marker.size() - kComparedBytes) : marker;
}

constexpr std::uint32_t kKernelHash = 0xffffffffu;  // no such socket: the kernel's own choice

sock_filter load(std::uint16_t size, std::uint32_t offset) {
  return BPF_STMT(static_cast<std::uint16_t>(BPF_LD | size | BPF_ABS), offset);
}

// The marker's bytes as (size, offset within the marker, big-endian value) loads.
struct Piece {
  std::uint16_t size;
  std::uint32_t at;
  std::uint32_t value;
};

std::vector<Piece> pieces(std::string_view marker) {
  std::vector<Piece> out;
  std::size_t i = 0;
  while (i < marker.size()) {
    const std::size_t left = marker.size() - i;
    const std::size_t n = left >= 4 ? 4 : left >= 2 ? 2 : 1;
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < n; ++k) v = (v << 8) | static_cast<unsigned char>(marker[i + k]);
    out.push_back({static_cast<std::uint16_t>(n == 4 ? BPF_W : n == 2 ? BPF_H : BPF_B),
                   static_cast<std::uint32_t>(i), v});
    i += n;
  }
  return out;
}

// Instructions per marker position: a load and a compare per piece, then the '.' (two),
// then the digit: load, subtract '0', return it.
std::size_t block_size(std::string_view marker) { return 2 * pieces(marker).size() + 2 + 3; }

constexpr std::size_t kPrologue = 3;  // is it a response?
constexpr std::size_t kEpilogue = 1;

}  // namespace

std::size_t response_steering_window(std::string_view marker, std::size_t instructions) {
  marker = compared(marker);
  if (marker.empty() || instructions < kPrologue + kEpilogue) return 0;
  return (std::min(instructions, kMaxInstructions) - kPrologue - kEpilogue) / block_size(marker);
}

std::vector<sock_filter> response_steering_program(std::string_view marker,
                                                   std::size_t instructions,
                                                   std::size_t scan_from) {
  std::vector<sock_filter> p;
  const std::size_t skipped = marker.size() - compared(marker).size();
  marker = compared(marker);
  scan_from += skipped;
  if (marker.empty()) return p;
  const auto parts = pieces(marker);
  const std::size_t block = block_size(marker);
  const std::size_t positions = response_steering_window(marker, instructions);
  p.reserve(kPrologue + positions * block + kEpilogue);

  // A load past the datagram's end ends the program with 0 (socket 0). That happens only to
  // datagrams shorter than four bytes and to responses without the marker: no worker waits
  // for either.
  p.push_back(load(BPF_W, 0));
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x5349502fu /* "SIP/" */, 1, 0));
  p.push_back(BPF_STMT(BPF_RET | BPF_K, kKernelHash));

  for (std::size_t n = 0; n < positions; ++n) {
    const auto at = static_cast<std::uint32_t>(scan_from + n);
    const std::size_t start = p.size();
    // On a mismatch, jump to the next position's block (called right after pushing the
    // jump: a jump's offset counts from the instruction after it).
    const auto skip = [&] { return static_cast<std::uint8_t>(start + block - p.size()); };
    for (const Piece& piece : parts) {
      p.push_back(load(piece.size, at + piece.at));
      p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, piece.value, 0, 0));
      p.back().jf = skip();
    }
    const auto digit = static_cast<std::uint32_t>(at + marker.size());
    p.push_back(load(BPF_B, digit + 1));
    p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, '.', 0, 0));
    p.back().jf = skip();
    // A byte below '0' wraps around to a huge index: no such socket, the kernel's hash.
    p.push_back(load(BPF_B, digit));
    p.push_back(BPF_STMT(BPF_ALU | BPF_SUB | BPF_K, '0'));
    p.push_back(BPF_STMT(BPF_RET | BPF_A, 0));
  }
  p.push_back(BPF_STMT(BPF_RET | BPF_K, kKernelHash));
  return p;
}

int attach_response_steering(int fd, const std::vector<sock_filter>& program) {
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.size());
  prog.filter = const_cast<sock_filter*>(program.data());
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) != 0) return errno;
  return 0;
}

}  // namespace transport
