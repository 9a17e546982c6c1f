// An open-addressing hash index: (hash, value) entries in one array, probed linearly from the
// hash's home slot, at most half full. The tables on the hot path (transactions, dialogs,
// subscribers) keep their entries elsewhere and index them here by a keyed 64-bit hash of
// their key: a lookup reads one or two neighbouring entries and compares the full key only of
// an entry whose hash matched.
//
// Why not std::unordered_map: each lookup in a node-based map walks a bucket, a node and the
// node's key, every one a likely cache miss in a table of some 100,000 entries, and each
// insertion allocates a node. perf measured such maps at 2-6 % of the server's CPU each.
//
// Value is a nullable handle: a pointer, a std::unique_ptr or std::shared_ptr, an integer id
// whose 0 is never used, or a small struct that tests false only when default-made. Value{}
// marks an empty entry, so an entry's value is never empty.
// Not thread-safe: the owner locks.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace base {

// The hash under which to index a record by an integer id (a transaction id, a counter). Ids
// count up, so their low bits alone would fill neighbouring entries in runs; this mixes every
// bit into the low ones (the finalizer of SplitMix64). Not keyed: ids are ours, never a
// peer's.
constexpr std::uint64_t hash_id(std::uint64_t id) {
  id ^= id >> 30;
  id *= 0xbf58476d1ce4e5b9ULL;
  id ^= id >> 27;
  id *= 0x94d049bb133111ebULL;
  return id ^ (id >> 31);
}

template <typename Value>
class FlatIndex {
 public:
  struct Entry {
    std::uint64_t hash = 0;
    Value value{};  // Value{}: the entry is empty
  };

  // `min_capacity` (a power of two, or 0): the index never shrinks below it.
  explicit FlatIndex(std::size_t min_capacity = 0)
      : min_capacity_(min_capacity), entries_(min_capacity) {}

  // The entry with hash `h` whose value `match` accepts, or nullptr. The pointer is valid until
  // the next insert() or erase().
  template <typename Match>
  Entry* find(std::uint64_t h, Match&& match) {
    if (entries_.empty()) return nullptr;
    for (std::size_t i = h & mask(); entries_[i].value; i = (i + 1) & mask()) {
      if (entries_[i].hash == h && match(entries_[i].value)) return &entries_[i];
    }
    return nullptr;
  }
  template <typename Match>
  const Entry* find(std::uint64_t h, Match&& match) const {
    return const_cast<FlatIndex*>(this)->find(h, std::forward<Match>(match));
  }

  // Adds `value` (not empty) under hash `h`; an equal key already present is not looked for.
  void insert(std::uint64_t h, Value value) {
    if ((size_ + 1) * 2 > entries_.size()) rehash(std::max<std::size_t>(entries_.size() * 2, 8));
    place(h, std::move(value));
    ++size_;
  }

  // Removes the entry `e` points to (from find()) and returns its value.
  Value erase(Entry* e) {
    Value gone = std::move(e->value);
    e->value = Value{};
    close_gap(static_cast<std::size_t>(e - entries_.data()));
    --size_;
    shrink_if_sparse();
    return gone;
  }

  // Removes every entry whose value `take` accepts, passing the value to `take` (which may move
  // from it when it returns true). Visits each entry once.
  template <typename Take>
  void erase_if(Take&& take) {
    if (size_ == 0) return;
    // The walk starts after an empty entry (there is one: the index is at most half full), so
    // no run of entries crosses its start. A backward shift then only moves entries it has not
    // reached yet, to the place it looks at next.
    std::size_t start = 0;
    while (entries_[start].value) ++start;
    for (std::size_t k = 1; k < entries_.size();) {
      const std::size_t i = (start + k) & mask();
      if (entries_[i].value && take(entries_[i].value)) {
        entries_[i].value = Value{};
        close_gap(i);
        --size_;
      } else {
        ++k;
      }
    }
    shrink_if_sparse();
  }

  // Calls f(value) for every entry; f must not insert or erase.
  template <typename F>
  void for_each(F&& f) const {
    for (const Entry& e : entries_) {
      if (e.value) f(e.value);
    }
  }

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return entries_.size(); }

 private:
  std::size_t mask() const { return entries_.size() - 1; }

  void place(std::uint64_t h, Value value) {
    std::size_t i = h & mask();
    while (entries_[i].value) i = (i + 1) & mask();
    entries_[i] = Entry{h, std::move(value)};
  }

  // Backward-shift deletion: pulls later entries of the run into the gap when the gap lies
  // between their home and where they are, so lookups never need tombstones.
  void close_gap(std::size_t i) {
    for (std::size_t j = (i + 1) & mask(); entries_[j].value; j = (j + 1) & mask()) {
      const std::size_t home = entries_[j].hash & mask();
      if (((j - home) & mask()) >= ((j - i) & mask())) {
        entries_[i] = std::move(entries_[j]);
        entries_[j].value = Value{};
        i = j;
      }
    }
  }

  // Halves the index while it is under 1/8 full (down to its minimum).
  void shrink_if_sparse() {
    std::size_t capacity = entries_.size();
    while (capacity > std::max<std::size_t>(min_capacity_, 8) && size_ * 8 < capacity) {
      capacity /= 2;
    }
    if (capacity != entries_.size()) rehash(capacity);
  }

  void rehash(std::size_t capacity) {
    std::vector<Entry> old(capacity);
    old.swap(entries_);
    for (Entry& e : old) {
      if (e.value) place(e.hash, std::move(e.value));
    }
  }

  std::size_t min_capacity_;
  std::vector<Entry> entries_;  // size a power of two, or 0
  std::size_t size_ = 0;
};

}  // namespace base
