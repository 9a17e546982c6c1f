#include "proxy/dialogs.h"

#include <algorithm>
#include <utility>

namespace proxy {

DialogTable::DialogTable(store::Store* store, shield::CallLimits* limits)
    : store_(store), limits_(limits) {}

DialogTable::Index::Entry* DialogTable::find(Shard& s, std::uint64_t h, std::string_view call_id,
                                             std::string_view caller_tag) {
  return s.by_call_id.find(h, [&](const std::unique_ptr<Dialog>& d) {
    return d->caller_tag == caller_tag && d->call_id == call_id;
  });
}

bool DialogTable::begin(Dialog dialog) {
  const std::uint64_t h = hash_(dialog.call_id);
  Shard& s = shard(h);
  auto entry = std::make_unique<Dialog>(std::move(dialog));
  const std::lock_guard lock(s.mu);
  if (find(s, h, entry->call_id, entry->caller_tag) != nullptr) return false;
  s.by_call_id.insert(h, std::move(entry));
  return true;
}

bool DialogTable::answered(std::string_view call_id, std::string_view caller_tag,
                           std::string_view callee_tag, const transport::Flow& callee_flow,
                           std::string_view callee_contact, std::int64_t now,
                           std::int64_t max_duration_s) {
  const std::uint64_t h = hash_(call_id);
  Shard& s = shard(h);
  const std::lock_guard lock(s.mu);
  const Index::Entry* e = find(s, h, call_id, caller_tag);
  // RFC 3261 §13.2.2.4: a forked INVITE may be answered twice; the proxy keeps the first
  // dialog (the UAC hangs the others up with their own BYEs).
  if (e == nullptr || e->value->answered_at != 0) return false;
  Dialog& d = *e->value;
  d.callee_tag = callee_tag;
  d.callee_flow = callee_flow;
  d.callee_contact = callee_contact;
  d.answered_at = now;
  d.deadline = max_duration_s > 0 ? now + max_duration_s : 0;
  return true;
}

void DialogTable::failed(std::string_view call_id, std::string_view caller_tag, int final_code,
                         std::int64_t now) {
  std::unique_ptr<Dialog> gone;
  {
    const std::uint64_t h = hash_(call_id);
    Shard& s = shard(h);
    const std::lock_guard lock(s.mu);
    Index::Entry* e = find(s, h, call_id, caller_tag);
    // A final failure after a 2xx (another fork's 487, a late 408) does not end the call.
    if (e == nullptr || e->value->answered_at != 0) return;
    gone = s.by_call_id.erase(e);
  }
  finish(std::move(*gone), final_code, now);
}

bool DialogTable::ended(std::string_view call_id, std::string_view from_tag,
                        std::string_view to_tag, std::int64_t now) {
  std::unique_ptr<Dialog> gone;
  {
    const std::uint64_t h = hash_(call_id);
    Shard& s = shard(h);
    const std::lock_guard lock(s.mu);
    // The BYE comes from the caller (From tag = caller tag) or from the callee (From tag =
    // callee tag); either way the other tag must be the answered side's.
    const auto answered_with = [](const Index::Entry* e, std::string_view callee_tag) {
      return e != nullptr && e->value->answered_at != 0 && e->value->callee_tag == callee_tag;
    };
    Index::Entry* e = find(s, h, call_id, from_tag);
    if (!answered_with(e, to_tag)) {
      e = find(s, h, call_id, to_tag);
      if (!answered_with(e, from_tag)) return false;
    }
    gone = s.by_call_id.erase(e);
  }
  finish(std::move(*gone), 200, now);
  return true;
}

void DialogTable::request_seen(std::string_view call_id, std::string_view from_tag,
                               std::string_view to_tag, std::uint32_t cseq) {
  const std::uint64_t h = hash_(call_id);
  Shard& s = shard(h);
  const std::lock_guard lock(s.mu);
  if (const Index::Entry* e = find(s, h, call_id, from_tag);
      e != nullptr && e->value->callee_tag == to_tag) {
    e->value->caller_cseq = std::max(e->value->caller_cseq, cseq);
    return;
  }
  if (const Index::Entry* e = find(s, h, call_id, to_tag);
      e != nullptr && e->value->callee_tag == from_tag) {
    e->value->callee_cseq = std::max(e->value->callee_cseq, cseq);
  }
}

std::vector<Dialog> DialogTable::take_due(std::int64_t now) {
  std::vector<Dialog> due;
  for (Shard& s : shards_) {
    const std::lock_guard lock(s.mu);
    s.by_call_id.erase_if([&](std::unique_ptr<Dialog>& d) {
      if (d->answered_at == 0 || d->deadline == 0 || d->deadline > now) return false;
      due.push_back(std::move(*d));
      return true;
    });
  }
  for (const Dialog& d : due) finish(d, 200, now);  // a copy: the caller sends the BYEs
  return due;
}

std::size_t DialogTable::size() const {
  std::size_t n = 0;
  for (const Shard& s : shards_) {
    const std::lock_guard lock(s.mu);
    n += s.by_call_id.size();
  }
  return n;
}

unsigned DialogTable::active_for(const std::string& limits_user) const {
  if (limits_user.empty()) return 0;  // empty means "holds no slot", not a user
  unsigned n = 0;
  for (const Shard& s : shards_) {
    const std::lock_guard lock(s.mu);
    s.by_call_id.for_each([&](const std::unique_ptr<Dialog>& d) {
      if (d->limits_user == limits_user) ++n;
    });
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
