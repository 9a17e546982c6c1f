// Heap bytes per registered binding in registrar::Location, measured in-process with glibc's
// mallinfo2() (bytes in use by malloc, all arenas). The bindings are shaped like those of the
// side-by-side memory benchmark (bench/lib/sidebyside.py, memory_phase; SIPp scenario
// bench/scenarios/register_auth_uac.xml): one contact per user over UDP from 127.0.0.1, no
// User-Agent, stored the way registrar.cc stores them (the Contact URI without its < >).
//
// Each binding is then refreshed once, as a re-registration does, so what a refresh leaves
// behind (e.g. in the expiry index) is counted too. Also prints the cost of apply and lookup.
//
// Usage: location_memory [bindings]   (default 100000)

#include <malloc.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "registrar/location.h"
#include "store/store.h"

namespace {

std::size_t heap_in_use() {
  return mallinfo2().uordblks;
}

std::string user(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "m%05d", i);
  return buf;
}

store::BindingChange registration(int i, std::int64_t now, std::uint32_t cseq) {
  const std::string name = user(i);
  store::BindingChange change;
  change.aor = name + "@127.0.0.1";
  store::Binding b;
  b.aor = change.aor;
  b.contact = "sip:" + name + "@127.0.0.1:5070";
  b.expires_at = now + 3600;
  b.call_id = std::to_string(i + 1) + "-4242@127.0.0.1";  // SIPp's default "%u-%p@%s"
  b.cseq = cseq;
  b.transport = "udp";
  b.source = "127.0.0.1:5070";
  b.local = "127.0.0.1:5060";
  b.listener = 0;
  b.worker = static_cast<std::uint16_t>(i % 2);
  change.upsert.push_back(std::move(b));
  return change;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  if (n <= 0) {
    std::fprintf(stderr, "usage: location_memory [bindings]\n");
    return 2;
  }
  const std::int64_t now = 1'800'000'000;

  // Build the changes first so that only the Location's own allocations are counted.
  std::vector<store::BindingChange> first, refresh;
  first.reserve(n);
  refresh.reserve(n);
  for (int i = 0; i < n; ++i) {
    first.push_back(registration(i, now, 2));
    refresh.push_back(registration(i, now + 1800, 4));
  }

  registrar::Location location;
  const std::size_t h0 = heap_in_use();
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& c : first) location.apply(c);
  const double apply_s = seconds_since(t0);
  const std::size_t h1 = heap_in_use();
  t0 = std::chrono::steady_clock::now();
  for (const auto& c : refresh) location.apply(c);
  const double refresh_s = seconds_since(t0);
  const std::size_t h2 = heap_in_use();

  std::size_t found = 0;
  t0 = std::chrono::steady_clock::now();
  for (const auto& c : refresh) found += location.lookup(c.aor, now + 1801).size();
  const double lookup_s = seconds_since(t0);
  if (found != static_cast<std::size_t>(n) || location.size() != static_cast<std::size_t>(n)) {
    std::fprintf(stderr, "wrong result: %zu found, size %zu\n", found, location.size());
    return 1;
  }
  // Everything due from the first registrations is stale: nothing may go.
  if (location.expire(now + 3600) != 0) {
    std::fprintf(stderr, "a refreshed binding expired by its earlier expiry\n");
    return 1;
  }
  const std::size_t h3 = heap_in_use();

  std::printf("bindings: %d\n", n);
  std::printf("heap per binding after registering: %.1f bytes\n", static_cast<double>(h1 - h0) / n);
  std::printf("heap per binding after one refresh: %.1f bytes\n", static_cast<double>(h2 - h0) / n);
  std::printf("heap per binding after the stale expiries: %.1f bytes\n",
              static_cast<double>(h3 - h0) / n);
  std::printf("apply (new): %.0f ns, apply (refresh): %.0f ns, lookup: %.0f ns\n",
              apply_s * 1e9 / n, refresh_s * 1e9 / n, lookup_s * 1e9 / n);
  return 0;
}
