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
// The transactions live in a base::SlotPool: an id names its slot and the slot's generation, so
// a stale id (a timer, an answer that comes back from the store after the transaction ended)
// finds nothing instead of a newer transaction in the same slot, and the slots of a load peak
// are freed once the load falls.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

#include "base/flat_index.h"
#include "base/slot_pool.h"

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
    Slot* s = slots_.find(slot_of(id), static_cast<std::uint32_t>(id >> (kSlotBits + 1)));
    return s != nullptr ? &s->txn : nullptr;
  }

  // The transaction whose key is `key` and false, or else a new one with that key and true.
  // One hash and one probe either way: a request is looked up and, when new, added. References
  // to other transactions stay valid (slots never move).
  std::pair<Found, bool> insert(std::string_view key) {
    const std::uint64_t h = hash_(key);
    if (const Found existing = find(key, h)) return {existing, false};
    const auto slot = slots_.acquire();
    slot.value.hash = h;
    const Id id = make_id(slot.index, slot.generation);
    // Through a pointer: with the key assigned directly, g++ 12 at -O2 took the returned
    // pointer for one to the key and warned falsely (-Wstringop-overflow) in the callers.
    Txn* const txn = &slot.value.txn;
    txn->key = key;
    index_.insert(h, id);
    return {Found{id, txn}, true};
  }

  // Ends the transaction `id` (which must exist): its slot is cleared for reuse, its strings
  // freed (base::SlotPool::release).
  void erase(Id id) {
    const std::uint32_t n = slot_of(id);
    index_.erase(index_.find(slots_[n].hash, [id](Id candidate) { return candidate == id; }));
    slots_.release(n);
  }

  std::size_t size() const { return index_.size(); }

  // Transaction slots allocated now, in chunks of base::SlotPool<>::kChunk (for the tests).
  std::size_t chunks_held() const { return slots_.chunks_held(); }

  // Calls f(id, txn) for every transaction; f must not insert or erase.
  template <typename F>
  void for_each(F&& f) {
    slots_.for_each([&](std::uint32_t n, Slot& s) { f(make_id(n, slots_.generation(n)), s.txn); });
  }

 private:
  static constexpr unsigned kSlotBits = 28;  // then the kind bit, then the generation
  static_assert(base::SlotPool<int>::kMaxSlots == std::uint64_t{1} << kSlotBits);
  // Ids stay below 2^61: the layer's timers keep two more bits beside an id.
  static constexpr std::size_t kMinCapacity = 64;

  struct Slot {
    std::uint64_t hash = 0;  // of the key, to find the index entry when erased
    Txn txn;
  };
  static std::uint32_t slot_of(Id id) {
    return static_cast<std::uint32_t>(id & ((std::uint64_t{1} << kSlotBits) - 1));
  }
  Id make_id(std::uint32_t n, std::uint32_t generation) const {
    return (std::uint64_t{generation} << (kSlotBits + 1)) | kind_ | n;
  }

  Found find(std::string_view key, std::uint64_t h) {
    const auto* e = index_.find(h, [&](Id id) { return slots_[slot_of(id)].txn.key == key; });
    if (e == nullptr) return {};
    return {e->value, &slots_[slot_of(e->value)].txn};
  }

  const std::uint64_t kind_;
  Hash hash_;
  base::SlotPool<Slot> slots_;  // the transactions, lowest slot first
  base::FlatIndex<Id> index_;   // the live transactions' ids by their keys' hashes
};

}  // namespace txn
