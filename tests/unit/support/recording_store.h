// A store for the proxy's and the dialog table's tests: it keeps the call records it is
// given, fails each binding change, and answers every other call with an error.
#pragma once

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace test_support {

class RecordingStore final : public store::Store {
 public:
  base::Result<void> put_subscriber(const store::Subscriber&) override { return unused(); }
  base::Result<void> put_subscribers(const std::vector<store::Subscriber>&) override {
    return unused();
  }
  base::Result<std::optional<store::Subscriber>> get_subscriber(const std::string&) override {
    return unused();
  }
  base::Result<std::vector<store::Subscriber>> list_subscribers() override { return unused(); }
  base::Result<bool> remove_subscriber(const std::string&) override { return unused(); }
  base::Result<std::uint64_t> subscribers_version() override { return unused(); }
  base::Result<std::vector<store::Binding>> load_bindings(std::int64_t) override {
    return unused();
  }
  base::Result<std::vector<store::Binding>> bindings_of(const std::string&, std::int64_t) override {
    return unused();
  }
  using store::Store::apply;
  void apply(std::shared_ptr<const store::BindingChange>, std::function<void(bool)> done) override {
    done(false);
  }
  base::Result<std::size_t> purge_expired(std::int64_t) override { return unused(); }
  base::Result<void> put_ban(const store::Ban&) override { return unused(); }
  base::Result<bool> remove_ban(const std::string&) override { return unused(); }
  base::Result<std::vector<store::Ban>> list_bans(std::int64_t) override { return unused(); }
  void add_call_record(store::CallRecord record) override {
    const std::lock_guard lock(mu);
    records.push_back(std::move(record));
  }
  void flush() override {}

  std::mutex mu;
  std::vector<store::CallRecord> records;

 private:
  static std::string unused() { return "not used by this test"; }
};

}  // namespace test_support
