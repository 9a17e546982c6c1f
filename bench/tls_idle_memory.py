#!/usr/bin/env python3
"""Resident memory per idle TLS connection of a running SIP server.

Opens N TLS connections (full handshake, one OPTIONS each so the server has really served
them), leaves them idle, and reports (RSS after - RSS before) / N of the server process.
Usage: tls_idle_memory.py PID HOST PORT [N=1000]. Bounded: N connections, 60 s overall.
"""
import resource
import socket
import ssl
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main():
    pid, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 256), hard))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    time.sleep(0.5)
    before = rss_kb(pid)
    deadline = time.time() + 60
    conns = []
    for i in range(n):
        if time.time() > deadline:
            break
        raw = socket.create_connection((host, port), timeout=5)
        tls = ctx.wrap_socket(raw)
        branch = f"z9hG4bK-mem-{i}"
        msg = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/TLS 127.0.0.1:1;branch={branch}\r\n"
               f"From: <sip:m@{host}>;tag={i}\r\nTo: <sip:{host}>\r\nCall-ID: mem-{i}\r\n"
               f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        tls.sendall(msg.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(4096)
            if not chunk:
                break
            data += chunk
        conns.append(tls)
    time.sleep(2)  # let the server settle (buffers released on idle)
    after = rss_kb(pid)
    per = (after - before) * 1024 / max(1, len(conns))
    print(f"connections={len(conns)} rss_before_kb={before} rss_after_kb={after} "
          f"bytes_per_idle_tls_connection={per:.0f}")
    for c in conns:
        c.close()


if __name__ == "__main__":
    main()
