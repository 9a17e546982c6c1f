// The transaction layer's tables (internal to src/txn): transactions in stable slots, found by
// id in one step and by matching key through a flat index.
//
// Why not two std::unordered_maps (id -> transaction, key -> id), as before: a UDP REGISTER's
// transaction lives 32 s (Timer J), so at 12,000 registrations/s a worker holds some 400,000
// of them, and each request looked its key up among those before it was known to be new. In
// node-based maps that lookup walked a bucket, a node and the node's key, each a cache miss
// (6 % of the server's CPU samples at that rate), and each transaction cost two node
// allocations. Here the index is a base::FlatIndex of (hash, id) pairs: a lookup of a new key
// reads one or two neighbouring entries and, at most, compares the full key of a transaction
// whose 64-bit hash matched.
//
// An id names its slot and the slot's generation, so a stale id (a timer, an answer that comes
// back from the store after the transaction ended) finds nothing instead of a newer
// transaction in the same slot.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "base/flat_index.h"

namespace txn {

// Txn: default-constructible, with a std::string member `key` (what the index matches on).
// Hash: std::uint64_t(std::string_view), keyed, so that peers cannot make keys collide.
template <typename Txn, typename Hash>
class TxnTable {
 public:
  using Id = std::uint64_t;  // never 0

  // `kind` (0 or 1) goes into every id, so that two tables never hand out the same id.
  TxnTable(unsigned kind, Hash hash) : kind_(std::uint64_t{kind & 1u} << kSlotBits),
                                       hash_(std::move(hash)), index_(kMinCapacity) {}
  TxnTable(const TxnTable&) = delete;
  TxnTable& operator=(const TxnTable&) = delete;

  struct Found {
    Id id = 0;
    Txn* txn = nullptr;
    explicit operator bool() const { return txn != nullptr; }
  };

  // The transaction whose key is `key`.
  Found find(std::string_view key) {
    return find(key, hash_(key));
  }

  // The transaction `id` names, or nullptr when it has ended.
  Txn* get(Id id) {
    if ((id & (std::uint64_t{1} << kSlotBits)) != kind_) return nullptr;
    const std::uint64_t n = slot_of(id);
    if (n >= slots_) return nullptr;
    Slot& s = slot(n);
    return s.id == id ? &s.txn : nullptr;
  }

  // The transaction whose key is `key` and false, or else a new one with that key and true.
  // One hash and one probe either way: a request is looked up and, when new, added. References
  // to other transactions stay valid (slots never move).
  std::pair<Found, bool> insert(std::string_view key) {
    const std::uint64_t h = hash_(key);
    if (const Found existing = find(key, h)) return {existing, false};
    std::uint64_t n;
    if (!free_.empty()) {
      n = free_.back();
      free_.pop_back();
    } else {
      if (slots_ == kMaxSlots) throw std::length_error("transaction table full");
      if ((slots_ & (kChunk - 1)) == 0) chunks_.push_back(std::make_unique<Slot[]>(kChunk));
      n = slots_++;
    }
    Slot& s = slot(n);
    s.id = (std::uint64_t{s.generation} << (kSlotBits + 1)) | kind_ | n;
    s.hash = h;
    // Through a pointer: with s.txn.key assigned directly, g++ 12 at -O2 took the returned
    // pointer for one to the key and warned falsely (-Wstringop-overflow) in the callers.
    Txn* const txn = &s.txn;
    txn->key = key;
    index_.insert(s.hash, s.id);
    return {Found{s.id, txn}, true};
  }

  // Ends the transaction `id` (which must exist): its slot is cleared for reuse.
  void erase(Id id) {
    const std::uint64_t n = slot_of(id);
    Slot& s = slot(n);
    index_.erase(index_.find(s.hash, [id](Id candidate) { return candidate == id; }));
    // Destroyed and made anew, not assigned `Txn{}`: assignment would keep the strings'
    // buffers (libstdc++ keeps a string's capacity when what it is assigned is short), so a free
    // slot would hold its last response or request until reused; after a load peak, every
    // slot's.
    std::destroy_at(&s.txn);
    std::construct_at(&s.txn);
    s.id = 0;
    s.generation = s.generation == kMaxGeneration ? 1 : s.generation + 1;
    free_.push_back(static_cast<std::uint32_t>(n));
  }

  std::size_t size() const { return index_.size(); }

  // Calls f(id, txn) for every transaction; f must not insert or erase.
  template <typename F>
  void for_each(F&& f) {
    for (std::uint64_t n = 0; n < slots_; ++n) {
      Slot& s = slot(n);
      if (s.id != 0) f(s.id, s.txn);
    }
  }

 private:
  static constexpr unsigned kSlotBits = 28;  // then the kind bit, then the generation
  static constexpr std::uint64_t kMaxSlots = std::uint64_t{1} << kSlotBits;
  // Ids stay below 2^62: the layer's timers keep two more bits beside an id.
  static constexpr std::uint32_t kMaxGeneration = 0xffffffffu;
  static constexpr std::uint64_t kChunk = 1024;  // slots per allocation
  static constexpr std::size_t kMinCapacity = 64;

  struct Slot {
    Id id = 0;  // 0: free
    std::uint64_t hash = 0;
    std::uint32_t generation = 1;
    Txn txn;
  };
  static std::uint64_t slot_of(Id id) { return id & (kMaxSlots - 1); }

  Found find(std::string_view key, std::uint64_t h) {
    const auto* e = index_.find(h, [&](Id id) { return slot(slot_of(id)).txn.key == key; });
    if (e == nullptr) return {};
    Slot& s = slot(slot_of(e->value));
    return {s.id, &s.txn};
  }
  Slot& slot(std::uint64_t n) { return chunks_[n / kChunk][n % kChunk]; }

  const std::uint64_t kind_;
  Hash hash_;
  std::vector<std::unique_ptr<Slot[]>> chunks_;
  std::uint64_t slots_ = 0;          // slots ever made (the free ones included)
  std::vector<std::uint32_t> free_;  // most recently freed last: reused first, still cached
  base::FlatIndex<Id> index_;        // the live transactions' ids by their keys' hashes
};

}  // namespace txn
