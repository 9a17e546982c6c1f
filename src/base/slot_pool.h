// Objects in stable slots, named by (index, generation), for tables whose entries live a while
// and are looked up by id: the transaction table and the timer wheel.
//
// Slots come in chunks of kChunk. A new object takes a slot in the lowest chunk that has a free
// one, so when the load falls after a peak the objects in use gather in the low chunks while
// the high ones empty; a chunk left empty is freed (one is kept, so that a load going up and down
// across a chunk's edge does not free and make it over and over). Before, a table kept the slots
// of its highest load until the server stopped: 75 MiB more, for good, after 40 s of 10,000
// REGISTER/s (docs/performance.md, "Memory after a load peak"). Within a chunk the most
// recently freed slot is reused first (still in the cache).
//
// A slot's generation advances each time it is freed, so an id kept after its object ended
// (a timer, an answer coming back from the store) finds nothing instead of a newer object in
// the same slot. A freed chunk remembers the highest generation of its slots, and starts from
// it if it is made again.
//
// Not thread-safe: the owner locks.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

namespace base {

template <typename T>
class SlotPool {
 public:
  static constexpr std::uint32_t kChunk = 1024;  // slots per allocation
  // Indexes stay below 2^28: the owners keep a few bits of their own beside one in an id.
  static constexpr std::uint32_t kMaxSlots = std::uint32_t{1} << 28;

  SlotPool() = default;
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  struct Acquired {
    std::uint32_t index;
    std::uint32_t generation;  // names this use of the slot
    T& value;                  // default-constructed
  };

  // Takes a free slot of the lowest chunk with one (a new chunk when all are full). Throws
  // std::length_error past kMaxSlots.
  Acquired acquire() {
    std::size_t c = lowest_;
    if (c >= chunks_.size() || chunks_[c].free_count == 0) c = chunk_with_room();
    Chunk& chunk = chunks_[c];
    const std::uint16_t offset = chunk.free[--chunk.free_count];
    if (chunk.free_count == 0) room_[c / 64] &= ~bit(c);
    if (c == spare_) spare_ = kNone;
    Slot& s = chunk.slots[offset];
    s.used = true;
    ++size_;
    return {static_cast<std::uint32_t>(c * kChunk + offset), s.generation, s.value};
  }

  // The object in slot `index` if it is in use under `generation`, else nullptr.
  T* find(std::uint32_t index, std::uint32_t generation) {
    if (index / kChunk >= chunks_.size()) return nullptr;
    const Chunk& chunk = chunks_[index / kChunk];
    if (!chunk.slots) return nullptr;
    Slot& s = chunk.slots[index % kChunk];
    return s.used && s.generation == generation ? &s.value : nullptr;
  }

  // Slot `index`, which must be in use.
  T& operator[](std::uint32_t index) { return slot(index).value; }
  const T& operator[](std::uint32_t index) const { return slot(index).value; }
  std::uint32_t generation(std::uint32_t index) const {
    return chunks_[index / kChunk].slots[index % kChunk].generation;
  }

  // Ends the use of slot `index` (which must be in use): its object is destroyed and made
  // anew, not assigned T{}, which would keep the buffers of its strings (libstdc++ keeps a
  // string's capacity when what it is assigned is short). Of the chunks left empty one is kept,
  // the lowest (a load going up and down across a chunk's edge would otherwise free and make it
  // again and again); the others are freed.
  void release(std::uint32_t index) {
    const std::size_t c = index / kChunk;
    Chunk& chunk = chunks_[c];
    Slot& s = chunk.slots[index % kChunk];
    std::destroy_at(&s.value);
    std::construct_at(&s.value);
    s.used = false;
    s.generation = next(s.generation);
    chunk.free[chunk.free_count++] = static_cast<std::uint16_t>(index % kChunk);
    room_[c / 64] |= bit(c);
    if (c < lowest_) lowest_ = c;
    --size_;
    if (chunk.free_count == kChunk) emptied(c);
  }

  std::size_t size() const { return size_; }  // slots in use

  // Chunks allocated now (each kChunk slots): what the pool holds beyond its objects' own heap.
  std::size_t chunks_held() const {
    return static_cast<std::size_t>(
        std::count_if(chunks_.begin(), chunks_.end(), [](const Chunk& c) { return !!c.slots; }));
  }

  // Calls f(index, object) for every slot in use; f must not acquire or release.
  template <typename F>
  void for_each(F&& f) {
    for (std::size_t c = 0; c < chunks_.size(); ++c) {
      if (!chunks_[c].slots) continue;
      for (std::uint32_t i = 0; i < kChunk; ++i) {
        Slot& s = chunks_[c].slots[i];
        if (s.used) f(static_cast<std::uint32_t>(c * kChunk + i), s.value);
      }
    }
  }

  // Ends every use (the objects are destroyed) and frees every chunk but one.
  void clear() {
    for (std::size_t c = 0; c < chunks_.size(); ++c) {
      // release() frees the chunk with its last slot in use: look again after each.
      for (std::uint32_t i = 0; i < kChunk && chunks_[c].slots; ++i) {
        if (chunks_[c].slots[i].used) release(static_cast<std::uint32_t>(c * kChunk + i));
      }
    }
  }

 private:
  struct Slot {
    std::uint32_t generation = 1;  // never 0
    bool used = false;
    T value{};
  };
  struct Chunk {
    std::unique_ptr<Slot[]> slots;          // null: freed (every slot free)
    std::unique_ptr<std::uint16_t[]> free;  // free offsets, the most recently freed last
    std::uint32_t free_count = 0;           // 0 for a freed chunk too
    std::uint32_t first_generation = 1;     // every slot's generation when the chunk is made
  };

  static constexpr std::size_t kNone = ~std::size_t{0};

  static std::uint32_t next(std::uint32_t generation) {
    return generation == 0xffffffffu ? 1 : generation + 1;
  }

  Slot& slot(std::uint32_t index) { return chunks_[index / kChunk].slots[index % kChunk]; }
  const Slot& slot(std::uint32_t index) const {
    return chunks_[index / kChunk].slots[index % kChunk];
  }

  static std::uint64_t bit(std::size_t c) { return std::uint64_t{1} << (c % 64); }

  // acquire()'s way when the chunk at lowest_ has no free slot: the lowest chunk with room,
  // made again if it was freed, or a new one when every chunk is full.
  std::size_t chunk_with_room() {
    std::size_t c = chunks_.size();
    for (std::size_t w = lowest_ / 64; w < room_.size(); ++w) {
      if (room_[w] != 0) {
        c = w * 64 + static_cast<std::size_t>(std::countr_zero(room_[w]));
        break;
      }
    }
    if (c == chunks_.size()) {
      if (chunks_.size() == kMaxSlots / kChunk) throw std::length_error("slot pool full");
      chunks_.emplace_back();
      if (c / 64 == room_.size()) room_.push_back(0);
      room_[c / 64] |= bit(c);
    }
    Chunk& chunk = chunks_[c];
    if (!chunk.slots) {
      chunk.slots = std::make_unique<Slot[]>(kChunk);
      chunk.free = std::make_unique<std::uint16_t[]>(kChunk);
      for (std::uint32_t i = 0; i < kChunk; ++i) {
        chunk.slots[i].generation = chunk.first_generation;
        chunk.free[i] = static_cast<std::uint16_t>(kChunk - 1 - i);  // offset 0 is taken first
      }
      chunk.free_count = kChunk;
    }
    lowest_ = c;
    return c;
  }

  // release()'s way when chunk `c` is left empty: it is kept if no other empty chunk is, and
  // otherwise the higher of the two is freed. Every slot's generation already names no id
  // handed out (release() advanced it), so the highest of them is a safe start for the
  // chunk's next life.
  void emptied(std::size_t c) {
    if (spare_ == kNone) {
      spare_ = c;
      return;
    }
    Chunk& chunk = chunks_[std::max(c, spare_)];
    spare_ = std::min(c, spare_);
    std::uint32_t highest = 1;
    for (std::uint32_t i = 0; i < kChunk; ++i) {
      highest = std::max(highest, chunk.slots[i].generation);
    }
    chunk.first_generation = highest;
    chunk.slots.reset();
    chunk.free.reset();
    chunk.free_count = 0;
  }

  std::vector<Chunk> chunks_;
  std::vector<std::uint64_t> room_;  // bit c: chunk c has a free slot, or is freed
  std::size_t lowest_ = 0;           // no chunk below it has room
  std::size_t spare_ = kNone;        // the one empty chunk kept
  std::size_t size_ = 0;
};

}  // namespace base
