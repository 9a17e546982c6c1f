// Batched UDP sends, black-box: what a worker sends while it handles a batch of received
// datagrams (or runs a posted task) goes out together at the end, and must arrive complete,
// in order and each at its own destination.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "loopback_udp.h"
#include "transport/transport.h"

namespace transport {
namespace {

constexpr int kSources = 4;
constexpr int kPerSource = 200;

// Answers every datagram with two: "<it>/a" and "<it>/b", back to its source.
class Echo final : public Receiver {
 public:
  explicit Echo(Transport& t) : t_(t) {}
  void on_message(std::string_view bytes, const Flow& flow) override {
    t_.send(flow, std::string(bytes) + "/a");
    t_.send(flow, std::string(bytes) + "/b");
  }
  void on_connection_closed(const Flow&) override {}

 private:
  Transport& t_;
};

// The datagrams arriving on `fd`: `expected` of them, or fewer if none came for `ms`.
std::vector<std::string> read_all(int fd, std::size_t expected, int ms) {
  std::vector<std::string> out;
  char buf[2048];
  pollfd p{fd, POLLIN, 0};
  while (out.size() < expected && ::poll(&p, 1, ms) > 0) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) break;
    out.emplace_back(buf, static_cast<std::size_t>(n));
  }
  return out;
}

int client_socket() {
  const int fd = loopback::udp_socket();
  const int big = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  return fd;
}

TEST(OutboxTest, AnswersToABurstArriveCompleteInOrderAtTheirSources) {
  Transport t(1, StreamLimits{}, [] { return nullptr; });
  const std::uint16_t port = loopback::free_udp_port();
  config::Listen l;
  l.transport = config::Transport::kUdp;
  l.address = "127.0.0.1";
  l.port = port;
  ASSERT_TRUE(t.listen(l).ok());
  Echo echo(t);
  t.set_receiver(0, &echo);

  std::vector<int> clients;
  for (int i = 0; i < kSources; ++i) clients.push_back(client_socket());
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(port);
  // Queued before the worker starts: its first recvmmsg takes full batches.
  for (int n = 0; n < kPerSource; ++n) {
    for (int c = 0; c < kSources; ++c) {
      const std::string m = std::to_string(c) + ":" + std::to_string(n);
      ::sendto(clients[c], m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    }
  }
  t.start();
  for (int c = 0; c < kSources; ++c) {
    const auto got = read_all(clients[c], 2 * kPerSource, 2000);
    ASSERT_EQ(got.size(), static_cast<std::size_t>(2 * kPerSource)) << "source " << c;
    for (int n = 0; n < kPerSource; ++n) {
      const std::string m = std::to_string(c) + ":" + std::to_string(n);
      EXPECT_EQ(got[2 * n], m + "/a");
      EXPECT_EQ(got[2 * n + 1], m + "/b");
    }
  }
  EXPECT_EQ(t.stats().messages_out.load(), static_cast<std::uint64_t>(2 * kSources * kPerSource));

  // A posted task's sends are batched too, and leave when it returns.
  Flow flow;
  flow.protocol = Protocol::kUdp;
  flow.remote = *Endpoint::from_string("127.0.0.1", loopback::local_port(clients[0]));
  flow.listener = t.listeners().front().id;
  flow.worker = 0;
  t.post(0, [&] {
    for (int n = 0; n < 50; ++n) t.send(flow, "posted " + std::to_string(n));
  });
  const auto got = read_all(clients[0], 50, 2000);
  ASSERT_EQ(got.size(), 50u);
  for (int n = 0; n < 50; ++n) EXPECT_EQ(got[n], "posted " + std::to_string(n));

  t.stop();
  for (int fd : clients) ::close(fd);
}

}  // namespace
}  // namespace transport
