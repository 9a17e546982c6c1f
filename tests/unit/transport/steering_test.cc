// Response steering, black-box: a Transport with several workers on one UDP address, fed
// datagrams from many client sockets (so that the kernel's hash alone would spread them).
#include "transport/steering.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "loopback_udp.h"
#include "transport/transport.h"

namespace transport {
namespace {

constexpr std::string_view kMarker = "z9hG4bKsw";
constexpr unsigned kWorkers = 3;
constexpr int kSources = 24;

class Recorder final : public Receiver {
 public:
  Recorder(unsigned worker, std::mutex& mu, std::vector<std::pair<unsigned, std::string>>& got)
      : worker_(worker), mu_(mu), got_(got) {}
  void on_message(std::string_view bytes, const Flow&) override {
    std::lock_guard lock(mu_);
    got_.emplace_back(worker_, std::string(bytes));
  }
  void on_connection_closed(const Flow&) override {}

 private:
  unsigned worker_;
  std::mutex& mu_;
  std::vector<std::pair<unsigned, std::string>>& got_;
};

std::string response(const std::string& branch) {
  return "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=" + branch +
         ";rport\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\n"
         "Call-ID: c@example.com\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
}

std::string request(int n) {
  return "OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKsw1." +
         std::to_string(n) + "\r\nCall-ID: " + std::to_string(n) + "\r\nContent-Length: 0\r\n\r\n";
}

class SteeringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    transport_ = std::make_unique<Transport>(kWorkers, StreamLimits{}, [] { return nullptr; });
    transport_->steer_responses(kMarker);
    port_ = loopback::free_udp_port();
    config::Listen l;
    l.transport = config::Transport::kUdp;
    l.address = "127.0.0.1";
    l.port = port_;
    ASSERT_TRUE(transport_->listen(l).ok());
    for (unsigned i = 0; i < kWorkers; ++i) {
      recorders_.push_back(std::make_unique<Recorder>(i, mu_, got_));
      transport_->set_receiver(i, recorders_.back().get());
    }
    transport_->start();
    for (int i = 0; i < kSources; ++i) sources_.push_back(loopback::udp_socket());
  }
  void TearDown() override {
    for (int fd : sources_) ::close(fd);
    transport_->stop();
  }

  // Sends `bytes` from every source; returns, per datagram, the worker that received it.
  std::vector<unsigned> from_every_source(const std::vector<std::string>& payloads) {
    {
      std::lock_guard lock(mu_);
      got_.clear();
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port_);
    for (std::size_t i = 0; i < sources_.size(); ++i) {
      const std::string& p = payloads[i % payloads.size()];
      ::sendto(sources_[i], p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    }
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (got_.size() >= sources_.size() || std::chrono::steady_clock::now() > give_up) {
          std::vector<unsigned> workers;
          for (const auto& [w, bytes] : got_) workers.push_back(w);
          return workers;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  std::unique_ptr<Transport> transport_;
  std::uint16_t port_ = 0;
  std::mutex mu_;
  std::vector<std::pair<unsigned, std::string>> got_;
  std::vector<std::unique_ptr<Recorder>> recorders_;
  std::vector<int> sources_;
};

TEST_F(SteeringTest, ResponsesGoToTheWorkerNamedInTheirBranch) {
  for (unsigned w = 0; w < kWorkers; ++w) {
    const auto got = from_every_source({response(std::string(kMarker) + std::to_string(w) +
                                                 ".1a.0123456789abcdef")});
    ASSERT_EQ(got.size(), static_cast<std::size_t>(kSources));
    EXPECT_EQ(std::set<unsigned>(got.begin(), got.end()), std::set<unsigned>{w});
  }
}

TEST_F(SteeringTest, RequestsKeepTheKernelsSpread) {
  // The request's Via names worker 1, but only responses are steered.
  std::vector<std::string> requests;
  for (int i = 0; i < kSources; ++i) requests.push_back(request(i));
  const auto got = from_every_source(requests);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kSources));
  EXPECT_GT(std::set<unsigned>(got.begin(), got.end()).size(), 1u)
      << "24 sources hashed onto one of 3 workers";
}

TEST_F(SteeringTest, ResponsesNotOursOrTooDeepAreStillDelivered) {
  const std::string deep = "SIP/2.0 200 OK\r\nX-Padding: " + std::string(400, 'p') +
                           "\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKsw2.1.0123456789abcdef\r\n"
                           "Content-Length: 0\r\n\r\n";
  const std::vector<std::string> odd = {
      response("z9hG4bK-other-proxy"),
      response("z9hG4bKsw7.1a.0123456789abcdef"),  // no worker 7: the kernel's choice
      response("z9hG4bKswx.1a.0123456789abcdef"),
      deep,
      "\r\n\r\n",
      "SIP/",
  };
  const auto got = from_every_source(odd);
  EXPECT_EQ(got.size(), static_cast<std::size_t>(kSources)) << "a datagram was lost";
}

TEST(SteeringProgramTest, FitsTheKernelAndLooksPastATypicalTopVia) {
  const auto program = response_steering_program(kMarker, kSteeringInstructions);
  EXPECT_LE(program.size(), kSteeringInstructions);
  EXPECT_GE(response_steering_window(kMarker, kSteeringInstructions), 250u);
  EXPECT_TRUE(response_steering_program("", kSteeringInstructions).empty());
}

}  // namespace
}  // namespace transport
