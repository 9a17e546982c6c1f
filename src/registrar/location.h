// The location service (RFC 3261 §10): the bindings of every address-of-record, in memory for
// lookups from any worker, rebuilt from the store at start-up. Thread-safe: sharded by AOR
// with a lock per shard, so workers registering different users do not contend.
//
// Memory is what limits how many users one node serves, so the bindings are kept packed, not
// as store::Binding: each AOR is one heap block holding the AOR once and all its bindings
// serialised (varint lengths and numbers, flow addresses in binary), ~100 bytes for a typical
// UDP phone instead of ~600. Lookups materialise what their reader needs, on demand.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"
#include "transport/endpoint.h"

namespace registrar {

class Location {
 public:
  Location() = default;
  Location(const Location&) = delete;
  Location& operator=(const Location&) = delete;

  // Replaces everything (start-up).
  void load(const std::vector<store::Binding>& bindings);
  // Unexpired bindings of `aor` at `now`, highest q first (equal q: in the order they were
  // first registered). Each one's `aor` is `aor`. Every field, as applied: the form the tests
  // hold the packing to. The server reads the cheaper views below.
  std::vector<store::Binding> lookup(const std::string& aor, std::int64_t now) const;
  // What a registration needs of an AOR's current bindings, in the same order: cheaper than
  // lookup(), which builds every field (the flow's addresses printed back from binary).
  struct Summary {
    std::string contact;
    std::int64_t expires_at = 0;
    double q = 1.0;
    std::string call_id;
    std::uint32_t cseq = 0;
  };
  std::vector<Summary> summaries(const std::string& aor, std::int64_t now) const;
  // What the proxy needs to reach each binding, in the same order: the Contact and the flow,
  // whose addresses come as kept (binary) instead of printed for the proxy to parse again.
  struct Address {
    std::optional<transport::Endpoint> endpoint;  // set when kept in binary
    std::string text;  // otherwise: as registered (it does not print back the same)
  };
  struct Reach {
    std::string contact;
    double q = 1.0;
    std::string transport;  // "udp", "tcp", "tls" (or as registered)
    Address source, local;
    std::uint64_t connection = 0;
    std::uint32_t listener = 0;
    std::uint16_t worker = 0;
  };
  std::vector<Reach> reach(const std::string& aor, std::int64_t now) const;
  // Applies one REGISTER's change (the same semantics as Store::apply; the upserted bindings
  // take the change's AOR).
  void apply(const store::BindingChange& change);
  // Drops every binding of user `name` (any AOR "name@...") — the user was removed.
  void remove_user(const std::string& name);
  // Drops the bindings that expired at or before `now`. Cost is proportional to the number
  // that are due (including refreshed ones whose earlier expiry is due), not to the table;
  // a shard's lock is held for at most a small batch of them at a time.
  std::size_t expire(std::int64_t now);
  // Bindings held, including expired ones that expire() has not dropped yet.
  std::size_t size() const;

 private:
  // The bindings of one AOR, packed into one block (layout in location.cc). Owned by the
  // shard's table.
  using Packed = std::unique_ptr<char[]>;

  // An open-addressing hash table of AOR blocks (linear probing, backward-shift deletion):
  // one pointer per slot and no node per entry. The AOR's hash is kept beside the pointer, in
  // a parallel array: a probe compares that instead of reading the block of every AOR it
  // passes (each a cache miss; perf put this table's find at 2-3 % of the server's CPU at
  // 8,000 REGISTER/s when the hash was in the block), and an erase moves entries back by it.
  class Table {
   public:
    // The slot holding `aor` (with hash `h`), or nullptr.
    Packed* find(std::string_view aor, std::uint32_t h);
    const Packed* find(std::string_view aor, std::uint32_t h) const;
    // Stores a new block for an AOR (with hash `h`) that is not in the table.
    void insert(std::uint32_t h, Packed block);
    void erase(Packed* slot);
    // Calls f(slot) for every block whose AOR hash is `h`; f may replace the block in its slot
    // (with one of the same AOR) or erase it (by returning true).
    template <class F>
    void for_each_with_hash(std::uint32_t h, F f);
    template <class F>
    void for_each(F f) const;
    void clear();

   private:
    std::size_t home(std::uint32_t h) const { return h & (slots_.size() - 1); }
    std::vector<Packed> slots_;  // size a power of two, or empty
    std::vector<std::uint32_t> hashes_;  // hashes_[i]: the hash of slots_[i]'s AOR, if full
    std::size_t used_ = 0;
  };

  struct Shard {
    mutable std::mutex mu;
    Table by_aor;
    std::size_t bindings = 0;
    // Expiry second -> hashes of the AORs with a binding due then. A refresh adds an entry and
    // leaves the earlier one: when that comes due it finds nothing expired (4 bytes until
    // then, instead of a copy of the AOR).
    std::map<std::int64_t, std::vector<std::uint32_t>> due;

    // The hashes due at second `at`, an empty list if none yet.
    std::vector<std::uint32_t>& due_at(std::int64_t at);
  };

  // The bindings of `aor` that add(payload, out) appends to `out` (it skips expired ones),
  // highest q first (stable): lookup() and summaries().
  template <class T, class Add>
  std::vector<T> collect(const std::string& aor, Add add) const;
  Shard& shard(std::uint64_t aor_hash) { return shards_[aor_hash % shards_.size()]; }
  const Shard& shard(std::uint64_t aor_hash) const { return shards_[aor_hash % shards_.size()]; }
  // Drops the expired bindings of every AOR with hash `h` in `s`; returns how many.
  static std::size_t expire_hash(Shard& s, std::uint32_t h, std::int64_t now);

  std::array<Shard, 64> shards_;
};

}  // namespace registrar
