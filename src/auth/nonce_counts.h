// The digest verifier's nonce-count table (internal to src/auth): for each (nonce, username,
// cnonce) key, the highest nc accepted so far, kept in insertion order so that the oldest entry
// is the one to expire or to evict at the cap. Not thread-safe: the verifier guards each shard.
//
// Why not an unordered_map plus a deque of pointers, as before: every authenticated REGISTER
// and INVITE inserts a key, and an entry lives as long as its nonce (minutes), so a table
// under load holds hundreds of thousands of them. In the node-based map each record() read a
// bucket, a node, and, to evict the oldest, the deque's pointer, that key's bucket and node:
// cache misses that made the table 3 % of the server's CPU samples at 8,500 registrations/s.
// Here the entries sit in a ring in insertion order (the oldest, next to expire, at the head;
// inserts at the tail: both sequential) and are found through a flat index of ring positions,
// probed linearly from the key's home. A lookup reads one index entry and one ring entry; an
// eviction finds its index entry the same way and closes the gap by backward shift.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

namespace auth {

class NonceCounts {
 public:
  // 128 bits of a cryptographic hash of the key: uniformly distributed, so its first 8 bytes
  // serve as the index hash.
  using Key = std::array<std::uint8_t, 16>;

  enum class Result { kAccepted, kReplay };

  // At most `capacity` entries (at least 1); an entry older than `lifetime` seconds is dropped.
  NonceCounts(std::size_t capacity, std::int64_t lifetime)
      : capacity_(capacity == 0 ? 1 : capacity), lifetime_(lifetime) {}

  // Accepts `nc` for `key` if it is above the highest accepted for that key, and records it.
  // First drops the entries older than the lifetime; a new key at the cap evicts the oldest.
  Result record(const Key& key, std::uint32_t nc, std::int64_t now) {
    while (size_ > 0 && now - ring_[head_].first_seen > lifetime_) pop_oldest();
    // After a peak (a flood of authentications), the ring and the index shrink back: halved
    // whenever an eighth or less of the ring is in use, so a ring just halved is a quarter full.
    if (ring_.size() > kMinRing && size_ * 8 <= ring_.size()) relayout(ring_.size() / 2);
    if (const std::size_t at = find(key); at != kNone) {
      Entry& e = ring_[at];
      if (nc <= e.highest_nc) return Result::kReplay;
      e.highest_nc = nc;
      return Result::kAccepted;
    }
    if (size_ == capacity_) pop_oldest();
    if (size_ == ring_.size()) relayout(ring_.empty() ? kMinRing : ring_.size() * 2);
    const std::size_t at = (head_ + size_) & (ring_.size() - 1);
    ring_[at] = Entry{key, nc, now};
    ++size_;
    std::size_t i = home(key);
    while (index_[i] != 0) i = (i + 1) & index_mask();
    index_[i] = static_cast<std::uint32_t>(at + 1);
    return Result::kAccepted;
  }

  std::size_t size() const { return size_; }
  std::size_t room() const { return ring_.size(); }  // entries the ring holds room for

 private:
  struct Entry {
    Key key;
    std::uint32_t highest_nc;
    std::int64_t first_seen;  // seconds since the epoch
  };
  static constexpr std::size_t kNone = ~std::size_t{0};
  static constexpr std::size_t kMinRing = 64;

  std::size_t index_mask() const { return index_.size() - 1; }

  std::size_t home(const Key& key) const {
    std::uint64_t h;
    std::memcpy(&h, key.data(), sizeof h);
    return static_cast<std::size_t>(h) & index_mask();
  }

  // The ring position of `key`, or kNone.
  std::size_t find(const Key& key) const {
    if (index_.empty()) return kNone;
    for (std::size_t i = home(key); index_[i] != 0; i = (i + 1) & index_mask()) {
      const std::size_t at = index_[i] - 1;
      if (ring_[at].key == key) return at;
    }
    return kNone;
  }

  // Drops the head of the ring and its index entry. Backward-shift deletion: each entry after
  // the gap in the probe run moves into it unless the gap lies before that entry's home.
  void pop_oldest() {
    const std::size_t at = head_;
    std::size_t i = home(ring_[at].key);
    while (index_[i] != at + 1) i = (i + 1) & index_mask();
    for (std::size_t j = (i + 1) & index_mask(); index_[j] != 0; j = (j + 1) & index_mask()) {
      const std::size_t h = home(ring_[index_[j] - 1].key);
      // Move j into the gap at i unless h lies cyclically in (i, j].
      const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (stays) continue;
      index_[i] = index_[j];
      i = j;
    }
    index_[i] = 0;
    head_ = (head_ + 1) & (ring_.size() - 1);
    --size_;
  }

  // Makes the ring `ring_size` entries (a power of two, at least size_): the entries laid out
  // again from position 0, oldest first, and the index rebuilt with two slots per ring entry,
  // so that it is at most half full.
  void relayout(std::size_t ring_size) {
    std::vector<Entry> ring(ring_size);
    for (std::size_t n = 0; n < size_; ++n) ring[n] = ring_[(head_ + n) & (ring_.size() - 1)];
    ring_ = std::move(ring);
    head_ = 0;
    index_.assign(ring_.size() * 2, 0);
    for (std::size_t n = 0; n < size_; ++n) {
      std::size_t i = home(ring_[n].key);
      while (index_[i] != 0) i = (i + 1) & index_mask();
      index_[i] = static_cast<std::uint32_t>(n + 1);
    }
  }

  const std::size_t capacity_;
  const std::int64_t lifetime_;
  std::vector<Entry> ring_;             // a power of two in size; size_ entries from head_
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::vector<std::uint32_t> index_;    // ring position + 1; 0 is empty. Twice the ring's size
};

}  // namespace auth
