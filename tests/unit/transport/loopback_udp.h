// UDP sockets on 127.0.0.1 for the transport's black-box tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace transport::loopback {

// A UDP socket bound to 127.0.0.1 on an ephemeral port.
inline int udp_socket() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  return fd;
}

// The local port of socket `fd`.
inline std::uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A UDP port on 127.0.0.1 that was free a moment ago (for a listener that every worker binds).
inline std::uint16_t free_udp_port() {
  const int fd = udp_socket();
  const std::uint16_t port = local_port(fd);
  ::close(fd);
  return port;
}

}  // namespace transport::loopback
