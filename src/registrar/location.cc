#include "registrar/location.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <optional>

#include "transport/endpoint.h"

namespace registrar {
namespace {

// ---- The packed form of one AOR's bindings
//
// A block: [binding count: varint][AOR: string] and then, per binding,
// [payload length: varint][payload]. Strings are a varint length and the bytes. A payload holds
// the fields of a store::Binding but `aor`, in this order:
//   contact      string         first, because apply() matches on it
//   expires_at   zigzag varint  second, because lookup() and expire() test it
//   q            varint k+1 when q is exactly k/1000 (what parse_q makes of "0.k"), else 0 and
//                the double's 8 bytes, so any double comes back bit for bit
//   call_id      string
//   cseq         varint
//   instance, reg_id, user_agent   strings
//   transport    varint: 1 "udp", 2 "tcp", 3 "tls", else 0 and a string
//   source, local  an address: 4 and the IPv4 bytes and port (big endian), 6 and the IPv6 bytes
//                and port, or — when the text would not come back identical — 0 and a string
//   connection, listener, worker   varints
// Varints are LEB128 (7 bits a byte, low first): most numbers here take one or two bytes.

// expire() releases a shard's lock after this many due AORs, so that a burst of expiries
// (a restart after an outage) does not stall the workers registering in that shard.
constexpr std::size_t kSweepBatch = 256;

enum TransportCode : std::uint8_t { kOtherTransport = 0, kUdp = 1, kTcp = 2, kTls = 3 };
enum AddressCode : std::uint8_t { kAddressText = 0, kIpv4 = 4, kIpv6 = 6 };

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void byte(std::uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void raw(const void* p, std::size_t n) { out_.append(static_cast<const char*>(p), n); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      byte(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    byte(static_cast<std::uint8_t>(v));
  }
  void zigzag(std::int64_t v) {
    varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void string(std::string_view s) {
    varint(s.size());
    out_.append(s);
  }

 private:
  std::string& out_;
};

// Reads what a Writer wrote. The blocks are our own, so it does not check bounds.
class Reader {
 public:
  explicit Reader(const char* p) : p_(p) {}
  const char* position() const { return p_; }
  std::uint8_t byte() { return static_cast<std::uint8_t>(*p_++); }
  void raw(void* out, std::size_t n) {
    std::memcpy(out, p_, n);
    p_ += n;
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      const std::uint8_t b = byte();
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  }
  std::int64_t zigzag() {
    const std::uint64_t v = varint();
    return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  std::string_view string() {
    const std::size_t n = varint();
    const std::string_view s(p_, n);
    p_ += n;
    return s;
  }

 private:
  const char* p_;
};

// The AOR of a block and its bindings' payloads (views into the block).
struct Unpacked {
  std::string_view aor;
  std::vector<std::string_view> bindings;
};

Unpacked unpack(const char* block) {
  Reader r(block);
  Unpacked u;
  const std::size_t count = r.varint();
  u.aor = r.string();
  u.bindings.reserve(count);
  for (std::size_t i = 0; i < count; ++i) u.bindings.push_back(r.string());
  return u;
}

// The payloads of a block, appended to `out`.
void append_payloads(const char* block, std::vector<std::string_view>& out) {
  Reader r(block);
  const std::size_t count = r.varint();
  r.string();  // the AOR
  for (std::size_t i = 0; i < count; ++i) out.push_back(r.string());
}

// Calls f(payload) for each binding of a block, without unpack()'s vector (lookup's path).
template <class F>
void for_each_payload(const char* block, F f) {
  Reader r(block);
  const std::size_t count = r.varint();
  r.string();  // the AOR
  for (std::size_t i = 0; i < count; ++i) f(r.string());
}

std::string_view aor_of(const char* block) {
  Reader r(block);
  r.varint();
  return r.string();
}

std::size_t count_of(const char* block) {
  return Reader(block).varint();
}

// The two fields every operation tests, read without decoding the rest.
struct Head {
  std::string_view contact;
  std::int64_t expires_at;
};

Head head_of(std::string_view payload) {
  Reader r(payload.data());
  const std::string_view contact = r.string();
  return {contact, r.zigzag()};
}

std::unique_ptr<char[]> pack(std::string_view aor, const std::vector<std::string_view>& payloads) {
  thread_local std::string out;  // reused: only the block is allocated per call
  out.clear();
  Writer w(out);
  w.varint(payloads.size());
  w.string(aor);
  for (std::string_view p : payloads) w.string(p);
  // Exactly the bytes needed: the block is what stays in memory.
  std::unique_ptr<char[]> block(new char[out.size()]);
  std::memcpy(block.get(), out.data(), out.size());
  return block;
}

// "192.0.2.1:5062" or "[2001:db8::1]:5062" as an Endpoint, if that is what the text is.
std::optional<transport::Endpoint> endpoint_of(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::uint16_t port = 0;
  const char* first = text.data() + colon + 1;
  const char* last = text.data() + text.size();
  const auto r = std::from_chars(first, last, port);
  if (r.ec != std::errc() || r.ptr != last) return std::nullopt;
  return transport::Endpoint::from_string(text.substr(0, colon), port);
}

void put_address(Writer& w, std::string_view text) {
  // Binary only when it prints back to the same text (not e.g. "::ffff:192.0.2.1" or a
  // leading zero in the port): lookups must return what was applied.
  if (const auto e = endpoint_of(text); e && e->to_string() == text) {
    w.byte(e->v6 ? kIpv6 : kIpv4);
    w.raw(e->bytes.data(), e->v6 ? 16 : 4);
    w.byte(static_cast<std::uint8_t>(e->port >> 8));
    w.byte(static_cast<std::uint8_t>(e->port & 0xff));
    return;
  }
  w.byte(kAddressText);
  w.string(text);
}

Location::Address get_address_as_kept(Reader& r) {
  Location::Address a;
  const std::uint8_t code = r.byte();
  if (code == kAddressText) {
    a.text = r.string();
    return a;
  }
  transport::Endpoint e;
  e.v6 = code == kIpv6;
  r.raw(e.bytes.data(), e.v6 ? 16 : 4);
  const std::uint8_t high = r.byte();
  e.port = static_cast<std::uint16_t>(high << 8 | r.byte());
  a.endpoint = e;
  return a;
}

std::string get_address(Reader& r) {
  Location::Address a = get_address_as_kept(r);
  return a.endpoint ? a.endpoint->to_string() : std::move(a.text);
}

void put_q(Writer& w, double q) {
  const double thousandths = std::round(q * 1000);
  if (thousandths >= 0 && thousandths <= 1000) {
    const auto k = static_cast<std::uint64_t>(thousandths);
    if (std::bit_cast<std::uint64_t>(static_cast<double>(k) / 1000) ==
        std::bit_cast<std::uint64_t>(q)) {
      w.varint(k + 1);
      return;
    }
  }
  w.varint(0);
  w.raw(&q, sizeof q);
}

double get_q(Reader& r) {
  const std::uint64_t code = r.varint();
  if (code != 0) return static_cast<double>(code - 1) / 1000;
  double q = 0;
  r.raw(&q, sizeof q);
  return q;
}

void put_transport(Writer& w, std::string_view t) {
  if (t == "udp") {
    w.varint(kUdp);
  } else if (t == "tcp") {
    w.varint(kTcp);
  } else if (t == "tls") {
    w.varint(kTls);
  } else {
    w.varint(kOtherTransport);
    w.string(t);
  }
}

std::string get_transport(Reader& r) {
  switch (r.varint()) {
    case kUdp:
      return "udp";
    case kTcp:
      return "tcp";
    case kTls:
      return "tls";
    default:
      return std::string(r.string());
  }
}

// Appends the payload of `b` to `out`.
void encode_into(const store::Binding& b, std::string& out) {
  Writer w(out);
  w.string(b.contact);
  w.zigzag(b.expires_at);
  put_q(w, b.q);
  w.string(b.call_id);
  w.varint(b.cseq);
  w.string(b.instance);
  w.string(b.reg_id);
  w.string(b.user_agent);
  put_transport(w, b.transport);
  put_address(w, b.source);
  put_address(w, b.local);
  w.varint(b.connection);
  w.varint(b.listener);
  w.varint(b.worker);
}

std::string encode(const store::Binding& b) {
  std::string out;
  encode_into(b, out);
  return out;
}

store::Binding decode(std::string_view payload, std::string_view aor) {
  Reader r(payload.data());
  store::Binding b;
  b.aor = aor;
  b.contact = r.string();
  b.expires_at = r.zigzag();
  b.q = get_q(r);
  b.call_id = r.string();
  b.cseq = static_cast<std::uint32_t>(r.varint());
  b.instance = r.string();
  b.reg_id = r.string();
  b.user_agent = r.string();
  b.transport = get_transport(r);
  b.source = get_address(r);
  b.local = get_address(r);
  b.connection = r.varint();
  b.listener = static_cast<std::uint32_t>(r.varint());
  b.worker = static_cast<std::uint16_t>(r.varint());
  return b;
}

// The shard is chosen by the low bits of the AOR's hash, the table slot by the high half (the
// part kept in the block and in the expiry index).
std::uint64_t hash_aor(std::string_view aor) {
  return std::hash<std::string_view>{}(aor);
}
std::uint32_t slot_hash(std::uint64_t h) {
  return static_cast<std::uint32_t>(h >> 32);
}

}  // namespace

// ---- Table

Location::Packed* Location::Table::find(std::string_view aor, std::uint32_t h) {
  if (slots_.empty()) return nullptr;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(h);; i = (i + 1) & mask) {
    Packed& slot = slots_[i];
    if (!slot) return nullptr;
    if (hashes_[i] == h && aor_of(slot.get()) == aor) return &slot;
  }
}

const Location::Packed* Location::Table::find(std::string_view aor, std::uint32_t h) const {
  return const_cast<Table*>(this)->find(aor, h);
}

void Location::Table::insert(std::uint32_t h, Packed block) {
  // At most 4/5 full: a slot is 12 bytes (the pointer and the AOR's hash), so this costs
  // 15..30 bytes per AOR while keeping linear probes short.
  if ((used_ + 1) * 5 > slots_.size() * 4) {
    const std::size_t size = std::max<std::size_t>(16, slots_.size() * 2);
    std::vector<Packed> old = std::exchange(slots_, std::vector<Packed>(size));
    const std::vector<std::uint32_t> old_hashes =
        std::exchange(hashes_, std::vector<std::uint32_t>(size));
    used_ = 0;
    for (std::size_t i = 0; i < old.size(); ++i) {
      if (old[i]) insert(old_hashes[i], std::move(old[i]));
    }
  }
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(h);
  while (slots_[i]) i = (i + 1) & mask;
  slots_[i] = std::move(block);
  hashes_[i] = h;
  ++used_;
}

void Location::Table::erase(Packed* slot) {
  // Backward-shift deletion: later entries of the same probe run move into the hole, so no
  // tombstones are needed and a probe still ends at the first empty slot.
  const std::size_t mask = slots_.size() - 1;
  std::size_t hole = static_cast<std::size_t>(slot - slots_.data());
  slots_[hole].reset();
  --used_;
  for (std::size_t j = (hole + 1) & mask; slots_[j]; j = (j + 1) & mask) {
    const std::size_t h = home(hashes_[j]);
    // It may move back unless its home lies after the hole (cyclically, in (hole, j]).
    if (((j - h) & mask) >= ((j - hole) & mask)) {
      slots_[hole] = std::move(slots_[j]);
      hashes_[hole] = hashes_[j];
      hole = j;
    }
  }
}

template <class F>
void Location::Table::for_each_with_hash(std::uint32_t h, F f) {
  if (slots_.empty()) return;
  const std::size_t mask = slots_.size() - 1;
  // Every entry with this hash lies in the run of full slots starting at its home. An erase
  // only moves later entries of the run back, so slot i is examined again after one.
  std::size_t i = home(h);
  while (slots_[i]) {
    if (hashes_[i] == h && f(slots_[i])) {
      erase(&slots_[i]);
    } else {
      i = (i + 1) & mask;
    }
  }
}

template <class F>
void Location::Table::for_each(F f) const {
  for (const Packed& p : slots_) {
    if (p) f(p);
  }
}

void Location::Table::clear() {
  slots_.clear();
  slots_.shrink_to_fit();
  hashes_.clear();
  hashes_.shrink_to_fit();
  used_ = 0;
}

// ---- Location

std::vector<std::uint32_t>& Location::Shard::due_at(std::int64_t at) {
  // A registration is most often due after every other one of its shard (now plus the same
  // expiry), so the last second is tried first. A search of the tree walks half a dozen
  // nodes that are rarely in the cache: it was three quarters of apply()'s time.
  if (!due.empty()) {
    const auto last = std::prev(due.end());
    if (last->first == at) return last->second;
    if (last->first < at) {
      return due.emplace_hint(due.end(), at, std::vector<std::uint32_t>{})->second;
    }
  }
  return due[at];
}

void Location::load(const std::vector<store::Binding>& bindings) {
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    s.by_aor.clear();
    s.due.clear();
    s.bindings = 0;
  }
  for (const store::Binding& b : bindings) {
    const std::uint64_t h = hash_aor(b.aor);
    const std::string payload = encode(b);
    Shard& s = shard(h);
    std::lock_guard lock(s.mu);
    Packed* slot = s.by_aor.find(b.aor, slot_hash(h));
    std::vector<std::string_view> list;
    if (slot != nullptr) list = unpack(slot->get()).bindings;
    list.push_back(payload);
    Packed block = pack(b.aor, list);
    if (slot != nullptr) {
      *slot = std::move(block);
    } else {
      s.by_aor.insert(slot_hash(h), std::move(block));
    }
    ++s.bindings;
    s.due_at(b.expires_at).push_back(slot_hash(h));
  }
}

template <class T, class Add>
std::vector<T> Location::collect(const std::string& aor, Add add) const {
  std::vector<T> out;
  const std::uint64_t h = hash_aor(aor);
  const Shard& s = shard(h);
  {
    std::lock_guard lock(s.mu);
    const Packed* slot = s.by_aor.find(aor, slot_hash(h));
    if (slot == nullptr) return out;
    out.reserve(count_of(slot->get()));
    for_each_payload(slot->get(), [&](std::string_view payload) { add(payload, out); });
  }
  // Most AORs have one binding; stable_sort would still allocate its scratch buffer.
  if (out.size() > 1) {
    std::stable_sort(out.begin(), out.end(), [](const T& a, const T& b) { return a.q > b.q; });
  }
  return out;
}

std::vector<store::Binding> Location::lookup(const std::string& aor, std::int64_t now) const {
  return collect<store::Binding>(aor, [&](std::string_view payload, auto& out) {
    if (head_of(payload).expires_at > now) out.push_back(decode(payload, aor));
  });
}

std::vector<Location::Summary> Location::summaries(const std::string& aor, std::int64_t now) const {
  return collect<Summary>(aor, [&](std::string_view payload, auto& out) {
    Reader r(payload.data());  // the leading fields of decode()
    Summary b;
    b.contact = r.string();
    b.expires_at = r.zigzag();
    if (b.expires_at <= now) return;
    b.q = get_q(r);
    b.call_id = r.string();
    b.cseq = static_cast<std::uint32_t>(r.varint());
    out.push_back(std::move(b));
  });
}

std::vector<Location::Reach> Location::reach(const std::string& aor, std::int64_t now) const {
  return collect<Reach>(aor, [&](std::string_view payload, auto& out) {
    Reader r(payload.data());  // decode()'s fields, those the proxy needs
    Reach b;
    b.contact = r.string();
    if (r.zigzag() <= now) return;
    b.q = get_q(r);
    r.string();  // call_id
    r.varint();  // cseq
    r.string();  // instance
    r.string();  // reg_id
    r.string();  // user_agent
    b.transport = get_transport(r);
    b.source = get_address_as_kept(r);
    b.local = get_address_as_kept(r);
    b.connection = r.varint();
    b.listener = static_cast<std::uint32_t>(r.varint());
    b.worker = static_cast<std::uint16_t>(r.varint());
    out.push_back(std::move(b));
  });
}

void Location::apply(const store::BindingChange& change) {
  const std::uint64_t h = hash_aor(change.aor);
  const std::uint32_t sh = slot_hash(h);
  // Scratch reused from call to call on this thread (the store's writer): a registration
  // allocates only its new block.
  thread_local std::string encoded;            // the upserts' payloads, back to back
  thread_local std::vector<std::size_t> ends;  // where each one ends in `encoded`
  thread_local std::vector<std::string_view> upserts;
  thread_local std::vector<std::string_view> list;  // views into the old block and `encoded`
  encoded.clear();
  ends.clear();
  for (const store::Binding& b : change.upsert) {  // encoded before taking the lock
    encode_into(b, encoded);
    ends.push_back(encoded.size());
  }
  upserts.clear();
  for (std::size_t i = 0, start = 0; i < ends.size(); start = ends[i++]) {
    upserts.push_back(std::string_view(encoded).substr(start, ends[i] - start));
  }

  Shard& s = shard(h);
  std::lock_guard lock(s.mu);
  Packed* slot = s.by_aor.find(change.aor, sh);
  list.clear();
  const std::size_t before = slot != nullptr ? count_of(slot->get()) : 0;
  if (slot != nullptr && !change.remove_all) append_payloads(slot->get(), list);
  for (const std::string& contact : change.remove) {
    std::erase_if(list, [&](std::string_view p) { return head_of(p).contact == contact; });
  }
  for (std::size_t i = 0; i < upserts.size(); ++i) {
    const std::string& contact = change.upsert[i].contact;
    const auto it = std::find_if(list.begin(), list.end(),
                                 [&](std::string_view p) { return head_of(p).contact == contact; });
    if (it != list.end()) {
      *it = upserts[i];
    } else {
      list.push_back(upserts[i]);
    }
  }
  s.bindings = s.bindings - before + list.size();
  if (list.empty()) {
    if (slot != nullptr) s.by_aor.erase(slot);
  } else if (slot != nullptr) {
    *slot = pack(change.aor, list);  // built before the old block (which `list` views) goes
  } else {
    s.by_aor.insert(sh, pack(change.aor, list));
  }
  for (const store::Binding& b : change.upsert) {
    std::vector<std::uint32_t>& at = s.due_at(b.expires_at);
    if (at.empty() || at.back() != sh) at.push_back(sh);
  }
}

void Location::remove_user(const std::string& name) {
  const std::string prefix = name + "@";
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    // Administrative and rare: a scan of the shard is fine. The AORs are collected first
    // because erasing moves entries within the table.
    std::vector<std::string> gone;
    s.by_aor.for_each([&](const Packed& p) {
      const std::string_view aor = aor_of(p.get());
      if (aor.starts_with(prefix)) gone.emplace_back(aor);
    });
    for (const std::string& aor : gone) {
      Packed* slot = s.by_aor.find(aor, slot_hash(hash_aor(aor)));
      s.bindings -= count_of(slot->get());
      s.by_aor.erase(slot);
    }
  }
}

std::size_t Location::expire_hash(Shard& s, std::uint32_t h, std::int64_t now) {
  std::size_t removed = 0;
  s.by_aor.for_each_with_hash(h, [&](Packed& block) {
    Unpacked u = unpack(block.get());
    const std::size_t n =
        std::erase_if(u.bindings, [&](std::string_view p) { return head_of(p).expires_at <= now; });
    if (n == 0) return false;  // a stale entry: the binding was refreshed or removed
    removed += n;
    if (u.bindings.empty()) return true;
    block = pack(u.aor, u.bindings);
    return false;
  });
  s.bindings -= removed;
  return removed;
}

std::size_t Location::expire(std::int64_t now) {
  std::size_t removed = 0;
  for (Shard& s : shards_) {
    for (;;) {
      std::lock_guard lock(s.mu);
      const auto first = s.due.begin();
      if (first == s.due.end() || first->first > now) break;
      std::vector<std::uint32_t>& hashes = first->second;
      for (std::size_t n = 0; n < kSweepBatch && !hashes.empty(); ++n) {
        removed += expire_hash(s, hashes.back(), now);
        hashes.pop_back();
      }
      if (hashes.empty()) s.due.erase(first);
    }
  }
  return removed;
}

std::size_t Location::size() const {
  std::size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.bindings;
  }
  return n;
}

}  // namespace registrar
