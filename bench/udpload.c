/* udpload: OPTIONS over UDP as fast as asked, answers matched, latency measured.
 *
 * The harness's own load generator for the OPTIONS scenario (SIPp tops out near 50,000
 * requests/s on this machine; see docs/performance.md, "Load generators"). Sends OPTIONS to
 * HOST:PORT from one or more local UDP sockets in batches (sendmmsg), reads the answers in
 * batches (recvmmsg), and prints one JSON object on stdout:
 *
 *   sent, answered (200), other_responses (final, not 200), lost (no final answer within
 *   the timeout), late (an answer after its request was counted lost), unmatched (not one
 *   of ours, or a duplicate), send_errors, duration_s (first to last send), rate_sent,
 *   rate_answered (200s per second from the first send to the last 200), latency_us
 *   {median, p90, p99, max} of the 200s, from a per-request send timestamp.
 *
 * Each request has a unique Call-ID and Via branch; both carry a run id (responses to an
 * earlier run are unmatched) and the request's number, the index into the timestamp table.
 *
 * Bounded: at most -n requests, no new request after -t seconds, and the run ends at most
 * -T milliseconds after the last send. -r paces at RATE per second (whatever is due is sent
 * every millisecond, at most -b per sendmmsg); -r 0 sends as fast as the window allows.
 * At most -w requests are outstanding (sent, not yet answered nor timed out).
 *
 *   cc -O2 -Wall -Wextra -Werror -o udpload bench/udpload.c
 *   ./udpload [-n TOTAL] [-t SECONDS] [-r RATE] [-w WINDOW] [-T TIMEOUT_MS] [-b BATCH]
 *             [-s SOCKETS] [-l LOCAL_IP] HOST:PORT
 *
 * Exit status: 0 when the run completed (whatever was lost), 2 on a usage error, 1 when the
 * sockets could not be set up.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 256
#define MAX_SOCKETS 64
#define MAXLEN 4096

enum { PENDING = 0, ANSWERED = 1, DONE_OTHER = 2, LOST = 3 };

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(const char* argv0) {
  fprintf(stderr,
          "usage: %s [-n TOTAL=10000] [-t SECONDS=10] [-r RATE=0 (max)] [-w WINDOW=1000]\n"
          "          [-T TIMEOUT_MS=2000] [-b BATCH=32] [-s SOCKETS=1] [-l LOCAL_IP=127.0.0.1]\n"
          "          HOST:PORT\n",
          argv0);
  exit(2);
}

static long arg_long(const char* s, long lo, long hi, const char* argv0) {
  char* end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi) usage(argv0);
  return v;
}

static int cmp_u32(const void* a, const void* b) {
  uint32_t x = *(const uint32_t*)a, y = *(const uint32_t*)b;
  return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of sorted v[0..n), nearest rank; 0 when empty. */
static uint32_t quantile(const uint32_t* v, size_t n, double q) {
  if (n == 0) return 0;
  size_t k = (size_t)(q * (double)n + 0.999999);
  if (k < 1) k = 1;
  if (k > n) k = n;
  return v[k - 1];
}

struct run {
  /* the request line, headers and run id shared by every request */
  char host[64], local_ip[64];
  int port;
  unsigned run_id;
  struct sockaddr_in dest;
  int fds[MAX_SOCKETS], local_port[MAX_SOCKETS], nsock;
  /* per request, indexed by its number */
  uint64_t* sent_at;
  uint8_t* state;
  /* latencies of the 200s, in microseconds */
  uint32_t* lat;
  size_t nlat;
  uint64_t answered, other, lost, late, unmatched, send_errors, outstanding;
  uint64_t last_200_ns;
};

/* Writes request `seq` (sent from socket s) into buf; returns its length. */
static int build(const struct run* r, int s, uint64_t seq, char* buf) {
  return snprintf(buf, MAXLEN,
                  "OPTIONS sip:%s:%d SIP/2.0\r\n"
                  "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-ul%08x-%" PRIu64
                  ";rport\r\n"
                  "Max-Forwards: 70\r\n"
                  "From: <sip:udpload@%s>;tag=ul%08x\r\n"
                  "To: <sip:%s:%d>\r\n"
                  "Call-ID: cid-ul%08x-%" PRIu64
                  "@%s\r\n"
                  "CSeq: 1 OPTIONS\r\n"
                  "Content-Length: 0\r\n\r\n",
                  r->host, r->port, r->local_ip, r->local_port[s], r->run_id, seq, r->local_ip,
                  r->run_id, r->host, r->port, r->run_id, seq, r->local_ip);
}

/* The request number in a response's branch (or Call-ID), or -1 if it is not one of ours. */
static int64_t match(const struct run* r, const char* p, size_t n) {
  char key[32];
  int k = snprintf(key, sizeof key, "-ul%08x-", r->run_id);
  const char *end = p + n, *hit = memmem(p, n, key, (size_t)k);
  if (!hit) return -1;
  const char* d = hit + k;
  if (d >= end || *d < '0' || *d > '9') return -1;
  int64_t v = 0;
  while (d < end && *d >= '0' && *d <= '9' && v < (INT64_MAX - 9) / 10) v = v * 10 + (*d++ - '0');
  return v;
}

static void on_response(struct run* r, const char* p, size_t n, uint64_t total, uint64_t now) {
  if (n < 12 || memcmp(p, "SIP/2.0 ", 8) != 0) {
    r->unmatched++;
    return;
  }
  int code = (p[8] - '0') * 100 + (p[9] - '0') * 10 + (p[10] - '0');
  if (code < 100 || code > 699) {
    r->unmatched++;
    return;
  }
  if (code < 200) return; /* provisional: the final answer is still to come */
  int64_t seq = match(r, p, n);
  if (seq < 0 || (uint64_t)seq >= total) {
    r->unmatched++;
    return;
  }
  uint8_t* st = &r->state[seq];
  if (*st == LOST) {
    r->late++;
    return;
  }
  if (*st != PENDING || r->sent_at[seq] == 0) {
    r->unmatched++; /* a duplicate, or an answer to something never sent */
    return;
  }
  r->outstanding--;
  if (code == 200) {
    *st = ANSWERED;
    r->answered++;
    r->lat[r->nlat++] = (uint32_t)((now - r->sent_at[seq]) / 1000);
    r->last_200_ns = now;
  } else {
    *st = DONE_OTHER;
    r->other++;
  }
}

static void drain(struct run* r, uint64_t total) {
  static char in[MAX_BATCH][MAXLEN];
  static struct mmsghdr m[MAX_BATCH];
  static struct iovec iov[MAX_BATCH];
  for (int s = 0; s < r->nsock; s++) {
    for (int round = 0; round < 64; round++) { /* bounded: at most 64 batches per socket */
      for (int i = 0; i < MAX_BATCH; i++) {
        iov[i] = (struct iovec){in[i], MAXLEN};
        m[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
      }
      int got = recvmmsg(r->fds[s], m, MAX_BATCH, MSG_DONTWAIT, NULL);
      if (got <= 0) break;
      uint64_t now = now_ns();
      for (int i = 0; i < got; i++) on_response(r, in[i], m[i].msg_len, total, now);
      if (got < MAX_BATCH) break;
    }
  }
}

int main(int argc, char** argv) {
  uint64_t total = 10000;
  double seconds = 10, rate = 0;
  long window = 1000, timeout_ms = 2000, batch = 32, nsock = 1;
  const char* local = "127.0.0.1";
  int opt;
  while ((opt = getopt(argc, argv, "n:t:r:w:T:b:s:l:h")) != -1) {
    switch (opt) {
      case 'n':
        total = (uint64_t)arg_long(optarg, 1, 200000000L, argv[0]);
        break;
      case 't':
        seconds = (double)arg_long(optarg, 1, 86400, argv[0]);
        break;
      case 'r':
        rate = (double)arg_long(optarg, 0, 10000000L, argv[0]);
        break;
      case 'w':
        window = arg_long(optarg, 1, 10000000L, argv[0]);
        break;
      case 'T':
        timeout_ms = arg_long(optarg, 1, 600000, argv[0]);
        break;
      case 'b':
        batch = arg_long(optarg, 1, MAX_BATCH, argv[0]);
        break;
      case 's':
        nsock = arg_long(optarg, 1, MAX_SOCKETS, argv[0]);
        break;
      case 'l':
        local = optarg;
        break;
      default:
        usage(argv[0]);
    }
  }
  if (optind != argc - 1) usage(argv[0]);

  static struct run r;
  const char* colon = strrchr(argv[optind], ':');
  if (!colon || (size_t)(colon - argv[optind]) >= sizeof r.host) usage(argv[0]);
  memcpy(r.host, argv[optind], (size_t)(colon - argv[optind]));
  r.port = (int)arg_long(colon + 1, 1, 65535, argv[0]);
  snprintf(r.local_ip, sizeof r.local_ip, "%s", local);
  r.dest = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)r.port)};
  struct in_addr local_addr;
  if (inet_pton(AF_INET, r.host, &r.dest.sin_addr) != 1 ||
      inet_pton(AF_INET, local, &local_addr) != 1) {
    fprintf(stderr, "udpload: HOST and LOCAL_IP must be IPv4 addresses\n");
    return 2;
  }
  r.run_id = (unsigned)(now_ns() ^ ((uint64_t)getpid() << 16));
  r.nsock = (int)nsock;
  for (int s = 0; s < r.nsock; s++) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), big = 4 << 20;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = local_addr};
    socklen_t alen = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr*)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr*)&a, &alen) < 0) {
      perror("udpload: socket");
      return 1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    r.fds[s] = fd;
    r.local_port[s] = ntohs(a.sin_port);
  }
  r.sent_at = calloc(total, sizeof *r.sent_at);
  r.state = calloc(total, 1);
  r.lat = calloc(total, sizeof *r.lat);
  if (!r.sent_at || !r.state || !r.lat) {
    fprintf(stderr, "udpload: out of memory for %" PRIu64 " requests\n", total);
    return 1;
  }

  static char out[MAX_BATCH][MAXLEN];
  static struct mmsghdr sm[MAX_BATCH];
  static struct iovec siov[MAX_BATCH];
  struct pollfd pfd[MAX_SOCKETS];
  for (int s = 0; s < r.nsock; s++) pfd[s] = (struct pollfd){.fd = r.fds[s], .events = POLLIN};

  const uint64_t timeout_ns = (uint64_t)timeout_ms * 1000000u;
  const uint64_t start = now_ns(), send_until = start + (uint64_t)(seconds * 1e9);
  uint64_t sent = 0, oldest = 0, first_send = 0, last_send = 0;
  int next_sock = 0;
  for (;;) {
    uint64_t now = now_ns();
    /* Requests with no final answer within the timeout are lost; they leave the window. */
    while (oldest < sent && (r.state[oldest] != PENDING || now - r.sent_at[oldest] > timeout_ns)) {
      if (r.state[oldest] == PENDING) {
        r.state[oldest] = LOST;
        r.lost++;
        r.outstanding--;
      }
      oldest++;
    }
    int sending = sent < total && now < send_until;
    if (!sending && r.outstanding == 0) break;
    if (!sending && now > last_send + timeout_ns + 1000000000u) break; /* belt and braces */

    if (sending) {
      uint64_t due = total - sent;
      if (rate > 0) {
        uint64_t allowed = (uint64_t)((double)(now - start) * rate / 1e9) + 1;
        due = allowed > sent ? allowed - sent : 0;
        if (due > total - sent) due = total - sent;
      }
      uint64_t room = (uint64_t)window > r.outstanding ? (uint64_t)window - r.outstanding : 0;
      if (due > room) due = room;
      /* Whatever is due goes out now, in batches of at most -b per socket per sendmmsg. */
      for (int guard = 0; due > 0 && guard < 64; guard++) {
        int s = next_sock;
        next_sock = (next_sock + 1) % r.nsock;
        int k = (int)(due < (uint64_t)batch ? due : (uint64_t)batch);
        for (int i = 0; i < k; i++) {
          int len = build(&r, s, sent + (uint64_t)i, out[i]);
          siov[i] = (struct iovec){out[i], (size_t)len};
          sm[i].msg_hdr = (struct msghdr){.msg_name = &r.dest,
                                          .msg_namelen = sizeof r.dest,
                                          .msg_iov = &siov[i],
                                          .msg_iovlen = 1};
        }
        uint64_t t = now_ns();
        int n = sendmmsg(r.fds[s], sm, (unsigned)k, 0);
        if (n < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) r.send_errors++;
          break; /* the socket buffer is full: read answers first */
        }
        if (!first_send) first_send = t;
        for (int i = 0; i < n; i++) r.sent_at[sent + (uint64_t)i] = t;
        sent += (uint64_t)n;
        r.outstanding += (uint64_t)n;
        last_send = t;
        due -= (uint64_t)n;
        if (n < k) break;
      }
    }

    drain(&r, total);

    /* Sleep until an answer arrives or the next request is due (1 ms ticks when paced). */
    int wait_ms = 1;
    if (sending && rate == 0 && r.outstanding < (uint64_t)window) wait_ms = 0;
    if (!sending) wait_ms = 10;
    if (poll(pfd, (nfds_t)r.nsock, wait_ms) > 0) drain(&r, total);
  }
  uint64_t end = now_ns();

  qsort(r.lat, r.nlat, sizeof *r.lat, cmp_u32);
  double dur = last_send > first_send ? (double)(last_send - first_send) / 1e9 : 0;
  double ans_dur = r.last_200_ns > first_send ? (double)(r.last_200_ns - first_send) / 1e9 : 0;
  printf(
      "{\"tool\": \"udpload\", \"target\": \"%s:%d\", \"rate_target\": %.0f, "
      "\"window\": %ld, \"sockets\": %d, \"timeout_ms\": %ld, \"total\": %" PRIu64
      ", "
      "\"sent\": %" PRIu64 ", \"answered\": %" PRIu64 ", \"other_responses\": %" PRIu64
      ", "
      "\"lost\": %" PRIu64 ", \"late\": %" PRIu64 ", \"unmatched\": %" PRIu64
      ", "
      "\"send_errors\": %" PRIu64
      ", \"duration_s\": %.3f, \"elapsed_s\": %.3f, "
      "\"rate_sent\": %.0f, \"rate_answered\": %.0f, "
      "\"latency_us\": {\"median\": %u, \"p90\": %u, \"p99\": %u, \"max\": %u}}\n",
      r.host, r.port, rate, window, r.nsock, timeout_ms, total, sent, r.answered, r.other, r.lost,
      r.late, r.unmatched, r.send_errors, dur, (double)(end - start) / 1e9,
      dur > 0 ? (double)sent / dur : 0, ans_dur > 0 ? (double)r.answered / ans_dur : 0,
      quantile(r.lat, r.nlat, 0.5), quantile(r.lat, r.nlat, 0.9), quantile(r.lat, r.nlat, 0.99),
      r.nlat ? r.lat[r.nlat - 1] : 0);
  return 0;
}
