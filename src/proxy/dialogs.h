// The calls in progress through this server (dialogs, RFC 3261 §12, from the proxy's seat):
// one entry per call attempt from the INVITE until the call ends, used for the per-extension
// limits, the maximum call duration and the call records (CDRs). Thread-safe (one mutex per
// shard); shared by every worker.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/flat_index.h"
#include "base/keyed_hash.h"
#include "shield/call_limits.h"
#include "store/store.h"
#include "transport/endpoint.h"

namespace proxy {

struct Dialog {
  std::string call_id;
  std::string caller_tag;  // From tag of the INVITE (with call_id: the key)
  std::string callee_tag;  // To tag of the 2xx; empty while ringing
  std::string caller;      // the authenticated user, or "trunk:NAME"
  std::string callee;      // the called user part (number or extension)
  std::string limits_user; // holds a shield::CallLimits slot for this user; empty: none
  std::string from_header; // the INVITE's From value as received (with the caller's tag)
  std::string to_header;   // the INVITE's To value as received (no tag)
  transport::Flow caller_flow, callee_flow;
  std::string caller_contact, callee_contact;  // remote targets (Contact URIs)
  std::uint32_t caller_cseq = 0;  // highest CSeq seen in requests from each side
  std::uint32_t callee_cseq = 0;
  std::int64_t started_at = 0;    // unix seconds
  std::int64_t answered_at = 0;   // 0: not answered
  std::int64_t deadline = 0;      // unix seconds when an answered call is ended; 0: never
  std::string source;             // caller's address "ip:port"
  std::string transport;          // "udp", "tcp", "tls" (caller side)
  std::uint16_t worker = 0;       // the worker that forwarded the INVITE
};

class DialogTable {
 public:
  // `store` receives a call record for every attempt when it ends (may be null: no CDRs);
  // `limits` gets release(limits_user) when an entry holding a slot ends (may be null).
  DialogTable(store::Store* store, shield::CallLimits* limits);

  // A call attempt was forwarded. An entry with the same key (a retransmission or a second
  // INVITE of the same call) is left as it is and false is returned.
  bool begin(Dialog dialog);
  // A 2xx came back: the call is answered (the first 2xx wins; later ones change nothing and
  // return false). `max_duration_s` 0: no deadline.
  bool answered(std::string_view call_id, std::string_view caller_tag,
                std::string_view callee_tag, const transport::Flow& callee_flow,
                std::string_view callee_contact, std::int64_t now, std::int64_t max_duration_s);
  // The attempt ended without an answer (final code >= 300, or timeout as 408): the entry is
  // removed, its record written, its limit slot released. Unknown key: no-op. An answered
  // entry is left alone.
  void failed(std::string_view call_id, std::string_view caller_tag, int final_code,
              std::int64_t now);
  // A BYE between the two parties (tags in either order): the call ended; record (final code
  // 200) and release. Returns false when no answered dialog matches.
  bool ended(std::string_view call_id, std::string_view from_tag, std::string_view to_tag,
             std::int64_t now);
  // A request within the dialog from the party with tag `from_tag`: remembers its CSeq (the
  // server needs the next one when it ends the call itself).
  void request_seen(std::string_view call_id, std::string_view from_tag,
                    std::string_view to_tag, std::uint32_t cseq);
  // Answered dialogs whose deadline is at or before `now`: removed, recorded (final code 200,
  // ended now), released, and returned so the caller can send the BYEs.
  std::vector<Dialog> take_due(std::int64_t now);

  std::size_t size() const;
  unsigned active_for(const std::string& limits_user) const;  // entries holding its slots

 private:
  // A dialog is found by its Call-ID's hash and its caller's tag. The Call-ID alone is hashed,
  // so the two lookups of a BYE (either party may send it) probe one run, and the shard comes
  // from the same hash. A peer chooses Call-IDs: the hash is keyed.
  //
  // Why not std::unordered_map keyed by Call-ID and tag, as before: each lookup built the key,
  // hashed it (and the Call-ID again for the shard) and walked a bucket and a node, each a
  // likely cache miss: perf put the table at 3.3 % of the server's CPU at 3,600 calls/s.
  using Index = base::FlatIndex<std::unique_ptr<Dialog>>;
  struct Shard {
    mutable std::mutex mu;
    Index by_call_id;
  };
  // The shard by the hash's top bits; the index uses the low ones.
  Shard& shard(std::uint64_t h) { return shards_[h >> 60]; }
  static Index::Entry* find(Shard& s, std::uint64_t h, std::string_view call_id,
                            std::string_view caller_tag);
  void finish(Dialog d, int final_code, std::int64_t now);  // record + release (no lock)

  store::Store* const store_;
  shield::CallLimits* const limits_;
  const base::KeyedHash hash_;
  std::array<Shard, 16> shards_;
};

}  // namespace proxy
