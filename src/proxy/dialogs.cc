#include "proxy/dialogs.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>

namespace proxy {
namespace {

// call_id + '\n' + caller_tag, into `key`.
void make_key(std::string& key, std::string_view call_id, std::string_view caller_tag) {
  key.reserve(call_id.size() + 1 + caller_tag.size());
  key.assign(call_id);
  key.push_back('\n');
  key.append(caller_tag);
}

// The key to look up, in this thread's scratch string: a lookup allocates nothing once the
// scratch has grown to a key's size. Valid until the next call on the thread.
const std::string& lookup_key(std::string_view call_id, std::string_view caller_tag) {
  thread_local std::string key;
  make_key(key, call_id, caller_tag);
  return key;
}

}  // namespace

DialogTable::DialogTable(store::Store* store, shield::CallLimits* limits)
    : store_(store), limits_(limits) {}

// Both tags of a dialog share its Call-ID, so every lookup of one call stays in one shard.
DialogTable::Shard& DialogTable::shard(std::string_view call_id) {
  return shards_[std::hash<std::string_view>{}(call_id) % shards_.size()];
}

const DialogTable::Shard& DialogTable::shard(std::string_view call_id) const {
  return shards_[std::hash<std::string_view>{}(call_id) % shards_.size()];
}

bool DialogTable::begin(Dialog dialog) {
  Shard& s = shard(dialog.call_id);
  std::string key;
  make_key(key, dialog.call_id, dialog.caller_tag);
  const std::lock_guard lock(s.mu);
  return s.by_key.try_emplace(std::move(key), std::move(dialog)).second;
}

bool DialogTable::answered(std::string_view call_id, std::string_view caller_tag,
                           std::string_view callee_tag, const transport::Flow& callee_flow,
                           std::string_view callee_contact, std::int64_t now,
                           std::int64_t max_duration_s) {
  Shard& s = shard(call_id);
  const std::lock_guard lock(s.mu);
  const auto it = s.by_key.find(lookup_key(call_id, caller_tag));
  // RFC 3261 §13.2.2.4: a forked INVITE may be answered twice; the proxy keeps the first
  // dialog (the UAC hangs the others up with their own BYEs).
  if (it == s.by_key.end() || it->second.answered_at != 0) return false;
  Dialog& d = it->second;
  d.callee_tag = callee_tag;
  d.callee_flow = callee_flow;
  d.callee_contact = callee_contact;
  d.answered_at = now;
  d.deadline = max_duration_s > 0 ? now + max_duration_s : 0;
  return true;
}

void DialogTable::failed(std::string_view call_id, std::string_view caller_tag, int final_code,
                         std::int64_t now) {
  std::optional<Dialog> gone;
  {
    Shard& s = shard(call_id);
    const std::lock_guard lock(s.mu);
    const auto it = s.by_key.find(lookup_key(call_id, caller_tag));
    // A final failure after a 2xx (another fork's 487, a late 408) does not end the call.
    if (it == s.by_key.end() || it->second.answered_at != 0) return;
    gone = std::move(it->second);
    s.by_key.erase(it);
  }
  finish(std::move(*gone), final_code, now);
}

bool DialogTable::ended(std::string_view call_id, std::string_view from_tag,
                        std::string_view to_tag, std::int64_t now) {
  std::optional<Dialog> gone;
  {
    Shard& s = shard(call_id);
    const std::lock_guard lock(s.mu);
    // The BYE comes from the caller (From tag = caller tag) or from the callee (From tag =
    // callee tag); either way the other tag must be the answered side's.
    auto it = s.by_key.find(lookup_key(call_id, from_tag));
    if (it == s.by_key.end() || it->second.answered_at == 0 || it->second.callee_tag != to_tag) {
      it = s.by_key.find(lookup_key(call_id, to_tag));
      if (it == s.by_key.end() || it->second.answered_at == 0 ||
          it->second.callee_tag != from_tag) {
        return false;
      }
    }
    gone = std::move(it->second);
    s.by_key.erase(it);
  }
  finish(std::move(*gone), 200, now);
  return true;
}

void DialogTable::request_seen(std::string_view call_id, std::string_view from_tag,
                               std::string_view to_tag, std::uint32_t cseq) {
  Shard& s = shard(call_id);
  const std::lock_guard lock(s.mu);
  if (const auto it = s.by_key.find(lookup_key(call_id, from_tag));
      it != s.by_key.end() && it->second.callee_tag == to_tag) {
    it->second.caller_cseq = std::max(it->second.caller_cseq, cseq);
    return;
  }
  if (const auto it = s.by_key.find(lookup_key(call_id, to_tag));
      it != s.by_key.end() && it->second.callee_tag == from_tag) {
    it->second.callee_cseq = std::max(it->second.callee_cseq, cseq);
  }
}

std::vector<Dialog> DialogTable::take_due(std::int64_t now) {
  std::vector<Dialog> due;
  for (Shard& s : shards_) {
    const std::lock_guard lock(s.mu);
    for (auto it = s.by_key.begin(); it != s.by_key.end();) {
      const Dialog& d = it->second;
      if (d.answered_at != 0 && d.deadline != 0 && d.deadline <= now) {
        due.push_back(std::move(it->second));
        it = s.by_key.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const Dialog& d : due) finish(d, 200, now);  // a copy: the caller sends the BYEs
  return due;
}

std::size_t DialogTable::size() const {
  std::size_t n = 0;
  for (const Shard& s : shards_) {
    const std::lock_guard lock(s.mu);
    n += s.by_key.size();
  }
  return n;
}

unsigned DialogTable::active_for(const std::string& limits_user) const {
  if (limits_user.empty()) return 0;  // empty means "holds no slot", not a user
  unsigned n = 0;
  for (const Shard& s : shards_) {
    const std::lock_guard lock(s.mu);
    for (const auto& entry : s.by_key) {
      if (entry.second.limits_user == limits_user) ++n;
    }
  }
  return n;
}

// Runs with no shard lock held: the store queues and CallLimits takes its own lock. The
// record takes the dialog's strings.
void DialogTable::finish(Dialog d, int final_code, std::int64_t now) {
  if (store_ != nullptr) {
    store::CallRecord record;
    record.call_id = std::move(d.call_id);
    record.caller = std::move(d.caller);
    record.callee = std::move(d.callee);
    record.source = std::move(d.source);
    record.transport = std::move(d.transport);
    record.started_at = d.started_at;
    record.answered_at = d.answered_at;
    record.ended_at = now;
    record.final_code = final_code;
    store_->add_call_record(std::move(record));
  }
  if (limits_ != nullptr && !d.limits_user.empty()) limits_->release(d.limits_user);
}

}  // namespace proxy
