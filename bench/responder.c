/* Stateless UDP SIP responder: the load generator's ceiling in bench/run.sh.
 *
 * OPTIONS -> 200. REGISTER without an Authorization header -> 401 with an MD5 qop=auth
 * challenge; REGISTER with one -> 200 (nothing is checked). Anything else -> 501.
 * Replies copy Via, From, To (+ tag), Call-ID and CSeq. One thread, batches of datagrams.
 *
 * cc -O2 -o responder bench/responder.c && ./responder PORT   (binds 127.0.0.1:PORT)
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define BATCH 64
#define MAXLEN 4096

static int starts(const char *p, const char *end, const char *name) {
  size_t n = strlen(name);
  return (size_t)(end - p) > n && strncasecmp(p, name, n) == 0;
}

/* Builds the reply to the request in[0..len) into out; returns its length (0: drop). */
static size_t answer(const char *in, size_t len, char *out) {
  const char *p = in, *end = in + len;
  int options = starts(p, end, "OPTIONS "), reg = starts(p, end, "REGISTER ");
  if (len < 8 || memcmp(in, "SIP/2.0 ", 8) == 0) return 0; /* a response: drop */
  char hdrs[MAXLEN];
  size_t h = 0;
  int auth = 0;
  while (p < end) { /* every header line; keep the ones a response copies */
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) break;
    size_t n = (size_t)(eol - p) + 1;
    if (n <= 2) break; /* blank line: end of headers */
    if (starts(p, eol, "Authorization:")) auth = 1;
    if (starts(p, eol, "Via:") || starts(p, eol, "v:") || starts(p, eol, "From:") ||
        starts(p, eol, "f:") || starts(p, eol, "Call-ID:") || starts(p, eol, "i:") ||
        starts(p, eol, "CSeq:")) {
      if (h + n >= sizeof hdrs) return 0;
      memcpy(hdrs + h, p, n), h += n;
    } else if (starts(p, eol, "To:") || starts(p, eol, "t:")) {
      size_t k = n;
      while (k > 0 && (p[k - 1] == '\r' || p[k - 1] == '\n')) k--;
      if (h + k + 20 >= sizeof hdrs) return 0;
      memcpy(hdrs + h, p, k), h += k;
      memcpy(hdrs + h, ";tag=r1\r\n", 9), h += 9;
    }
    p = eol + 1;
  }
  const char *status = "501 Not Implemented", *extra = "";
  if (options) status = "200 OK";
  if (reg && auth) status = "200 OK";
  if (reg && !auth) {
    status = "401 Unauthorized";
    extra = "WWW-Authenticate: Digest realm=\"127.0.0.1\", nonce=\"6b0e2c54a1f3d9e7\", "
            "opaque=\"0\", algorithm=MD5, qop=\"auth\"\r\n";
  }
  int n = snprintf(out, MAXLEN, "SIP/2.0 %s\r\n%.*s%sContent-Length: 0\r\n\r\n", status,
                   (int)h, hdrs, extra);
  return n > 0 && n < MAXLEN ? (size_t)n : 0;
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: %s PORT\n", argv[0]); return 2; }
  int fd = socket(AF_INET, SOCK_DGRAM, 0), big = 4 << 20;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
  static char in[BATCH][MAXLEN], out[BATCH][MAXLEN];
  static struct sockaddr_in from[BATCH];
  static struct mmsghdr rm[BATCH], sm[BATCH];
  static struct iovec riov[BATCH], siov[BATCH];
  for (int i = 0; i < BATCH; i++) {
    riov[i] = (struct iovec){in[i], MAXLEN};
    rm[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_iov = &riov[i], .msg_iovlen = 1};
  }
  for (;;) {
    for (int i = 0; i < BATCH; i++) rm[i].msg_hdr.msg_namelen = sizeof from[i];
    int got = recvmmsg(fd, rm, BATCH, MSG_WAITFORONE, NULL);
    if (got < 0) continue;
    int k = 0;
    for (int i = 0; i < got; i++) {
      size_t n = answer(in[i], rm[i].msg_len, out[k]);
      if (!n) continue;
      siov[k] = (struct iovec){out[k], n};
      sm[k].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i],
                                      .msg_iov = &siov[k], .msg_iovlen = 1};
      k++;
    }
    for (int s = 0; s < k;) {
      int r = sendmmsg(fd, sm + s, (unsigned)(k - s), 0);
      if (r <= 0) break;
      s += r;
    }
  }
}
