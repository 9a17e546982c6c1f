#include "proxy/dialogs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/recording_store.h"

namespace proxy {
namespace {

using test_support::RecordingStore;

constexpr std::int64_t kStart = 1'800'000'000;

transport::Flow flow(const char* address, std::uint16_t port) {
  transport::Flow f;
  f.remote = *transport::Endpoint::from_string(address, port);
  return f;
}

Dialog invite(const std::string& call_id, const std::string& caller_tag,
              const std::string& limits_user = "1000") {
  Dialog d;
  d.call_id = call_id;
  d.caller_tag = caller_tag;
  d.caller = "1000";
  d.callee = "1001";
  d.limits_user = limits_user;
  d.from_header = "<sip:1000@example.com>;tag=" + caller_tag;
  d.to_header = "<sip:1001@example.com>";
  d.caller_flow = flow("192.0.2.10", 5060);
  d.caller_contact = "sip:1000@192.0.2.10:5060";
  d.caller_cseq = 1;
  d.started_at = kStart;
  d.source = "192.0.2.10:5060";
  d.transport = "udp";
  d.worker = 2;
  return d;
}

class DialogTableTest : public ::testing::Test {
 protected:
  // A call by 1000 as the table's users would start it: a slot is taken first.
  bool start(const std::string& call_id, const std::string& caller_tag) {
    EXPECT_EQ(limits_.admit("1000", 0, 0), shield::CallLimits::Refusal::kNone);
    return table_.begin(invite(call_id, caller_tag));
  }
  bool answer(const std::string& call_id, const std::string& caller_tag,
              const std::string& callee_tag, std::int64_t at, std::int64_t max_duration = 0) {
    return table_.answered(call_id, caller_tag, callee_tag, flow("198.51.100.5", 5062),
                           "sip:1001@198.51.100.5:5062", at, max_duration);
  }

  RecordingStore store_;
  shield::CallLimits limits_;
  DialogTable table_{&store_, &limits_};
};

TEST_F(DialogTableTest, AnsweredCallEndedByCallerByeIsRecordedAndReleased) {
  ASSERT_TRUE(start("c1", "a"));
  EXPECT_EQ(table_.size(), 1u);
  EXPECT_EQ(table_.active_for("1000"), 1u);
  EXPECT_TRUE(answer("c1", "a", "b", kStart + 3));
  EXPECT_TRUE(store_.records.empty());
  EXPECT_EQ(limits_.active("1000"), 1u);

  EXPECT_TRUE(table_.ended("c1", "a", "b", kStart + 60));
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_EQ(table_.active_for("1000"), 0u);
  EXPECT_EQ(limits_.active("1000"), 0u);
  ASSERT_EQ(store_.records.size(), 1u);
  const store::CallRecord& r = store_.records[0];
  EXPECT_EQ(r.call_id, "c1");
  EXPECT_EQ(r.caller, "1000");
  EXPECT_EQ(r.callee, "1001");
  EXPECT_EQ(r.source, "192.0.2.10:5060");
  EXPECT_EQ(r.transport, "udp");
  EXPECT_EQ(r.started_at, kStart);
  EXPECT_EQ(r.answered_at, kStart + 3);
  EXPECT_EQ(r.ended_at, kStart + 60);
  EXPECT_EQ(r.final_code, 200);

  // A retransmitted BYE finds nothing and records nothing more.
  EXPECT_FALSE(table_.ended("c1", "a", "b", kStart + 61));
  EXPECT_EQ(store_.records.size(), 1u);
}

TEST_F(DialogTableTest, CalleeByeWithTagsSwappedEndsTheCall) {
  ASSERT_TRUE(start("c1", "a"));
  ASSERT_TRUE(answer("c1", "a", "b", kStart + 1));
  EXPECT_TRUE(table_.ended("c1", "b", "a", kStart + 10));
  ASSERT_EQ(store_.records.size(), 1u);
  EXPECT_EQ(store_.records[0].final_code, 200);
  EXPECT_EQ(limits_.active("1000"), 0u);
}

TEST_F(DialogTableTest, ByeWithWrongTagOrCallIdOrBeforeAnswerIsIgnored) {
  ASSERT_TRUE(start("c1", "a"));
  EXPECT_FALSE(table_.ended("c1", "a", "", kStart + 1));  // not answered yet
  EXPECT_FALSE(table_.ended("c1", "a", "b", kStart + 1));
  ASSERT_TRUE(answer("c1", "a", "b", kStart + 2));
  EXPECT_FALSE(table_.ended("c1", "a", "x", kStart + 3));
  EXPECT_FALSE(table_.ended("c1", "x", "b", kStart + 3));
  EXPECT_FALSE(table_.ended("c1", "x", "a", kStart + 3));
  EXPECT_FALSE(table_.ended("c1", "a", "a", kStart + 3));
  EXPECT_FALSE(table_.ended("c2", "a", "b", kStart + 3));
  EXPECT_EQ(table_.size(), 1u);
  EXPECT_TRUE(store_.records.empty());
  EXPECT_EQ(limits_.active("1000"), 1u);
}

TEST_F(DialogTableTest, FailedAttemptIsRecordedWithItsCodeAndReleased) {
  ASSERT_TRUE(start("c1", "a"));
  table_.failed("c1", "a", 486, kStart + 5);
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_EQ(limits_.active("1000"), 0u);
  ASSERT_EQ(store_.records.size(), 1u);
  const store::CallRecord& r = store_.records[0];
  EXPECT_EQ(r.call_id, "c1");
  EXPECT_EQ(r.final_code, 486);
  EXPECT_EQ(r.started_at, kStart);
  EXPECT_EQ(r.answered_at, 0);
  EXPECT_EQ(r.ended_at, kStart + 5);

  // Unknown key (or the same failure again): nothing happens.
  table_.failed("c1", "a", 486, kStart + 6);
  table_.failed("nope", "a", 408, kStart + 6);
  EXPECT_EQ(store_.records.size(), 1u);
}

TEST_F(DialogTableTest, TimeoutIsRecordedAs408) {
  ASSERT_TRUE(start("c1", "a"));
  table_.failed("c1", "a", 408, kStart + 32);
  ASSERT_EQ(store_.records.size(), 1u);
  EXPECT_EQ(store_.records[0].final_code, 408);
}

TEST_F(DialogTableTest, FailureAfterAnswerLeavesTheCallUp) {
  ASSERT_TRUE(start("c1", "a"));
  ASSERT_TRUE(answer("c1", "a", "b", kStart + 1));
  table_.failed("c1", "a", 487, kStart + 2);  // another fork's answer to the CANCEL
  EXPECT_EQ(table_.size(), 1u);
  EXPECT_TRUE(store_.records.empty());
  EXPECT_EQ(limits_.active("1000"), 1u);
  EXPECT_TRUE(table_.ended("c1", "a", "b", kStart + 9));
}

TEST_F(DialogTableTest, DuplicateBeginKeepsTheFirstEntry) {
  ASSERT_TRUE(start("c1", "a"));
  Dialog again = invite("c1", "a", "");
  again.callee = "9999";
  again.started_at = kStart + 1;
  EXPECT_FALSE(table_.begin(again));
  EXPECT_EQ(table_.size(), 1u);
  EXPECT_EQ(table_.active_for("1000"), 1u);

  // Another caller tag with the same Call-ID is another attempt.
  EXPECT_TRUE(table_.begin(invite("c1", "other", "")));
  EXPECT_EQ(table_.size(), 2u);

  table_.failed("c1", "a", 480, kStart + 4);
  ASSERT_EQ(store_.records.size(), 1u);
  EXPECT_EQ(store_.records[0].callee, "1001");
  EXPECT_EQ(store_.records[0].started_at, kStart);
  EXPECT_EQ(limits_.active("1000"), 0u);
}

TEST_F(DialogTableTest, ForkedSecond2xxIsIgnored) {
  ASSERT_TRUE(start("c1", "a"));
  EXPECT_TRUE(answer("c1", "a", "b1", kStart + 2));
  EXPECT_FALSE(answer("c1", "a", "b2", kStart + 3, 30));
  EXPECT_FALSE(answer("nope", "a", "b1", kStart + 3));

  // The second fork's tag does not end the call; the first one's does, answered at +2 with
  // no deadline (the second 2xx's maximum duration was not applied).
  EXPECT_TRUE(table_.take_due(kStart + 1000).empty());
  EXPECT_FALSE(table_.ended("c1", "a", "b2", kStart + 40));
  EXPECT_TRUE(table_.ended("c1", "a", "b1", kStart + 40));
  ASSERT_EQ(store_.records.size(), 1u);
  EXPECT_EQ(store_.records[0].answered_at, kStart + 2);
}

TEST_F(DialogTableTest, TakeDueEndsAnsweredCallsAtTheirDeadline) {
  ASSERT_TRUE(start("c1", "a"));
  ASSERT_TRUE(start("c2", "a"));
  ASSERT_TRUE(start("c3", "a"));
  ASSERT_TRUE(start("c4", "a"));
  ASSERT_TRUE(answer("c1", "a", "b", kStart + 10, 60));  // due at +70
  ASSERT_TRUE(answer("c2", "a", "b", kStart + 20, 60));  // due at +80
  ASSERT_TRUE(answer("c3", "a", "b", kStart + 10, 0));   // never due
  // c4 rings forever: not answered, so not due whatever the time.
  EXPECT_EQ(limits_.active("1000"), 4u);

  EXPECT_TRUE(table_.take_due(kStart + 69).empty());
  std::vector<Dialog> due = table_.take_due(kStart + 70);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].call_id, "c1");
  EXPECT_EQ(due[0].callee_tag, "b");
  EXPECT_EQ(due[0].callee_contact, "sip:1001@198.51.100.5:5062");
  EXPECT_EQ(due[0].callee_flow.remote, flow("198.51.100.5", 5062).remote);
  EXPECT_EQ(due[0].worker, 2);
  EXPECT_EQ(limits_.active("1000"), 3u);
  ASSERT_EQ(store_.records.size(), 1u);
  EXPECT_EQ(store_.records[0].final_code, 200);
  EXPECT_EQ(store_.records[0].ended_at, kStart + 70);
  EXPECT_EQ(store_.records[0].answered_at, kStart + 10);

  due = table_.take_due(kStart + 100000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].call_id, "c2");
  EXPECT_EQ(table_.size(), 2u);
  EXPECT_EQ(limits_.active("1000"), 2u);
  // Taken once only: the BYE the server then sends through ended() finds nothing.
  EXPECT_FALSE(table_.ended("c2", "a", "b", kStart + 100001));
  EXPECT_EQ(limits_.active("1000"), 2u);
  EXPECT_EQ(store_.records.size(), 2u);
}

TEST_F(DialogTableTest, RequestSeenKeepsTheHighestCSeqOfEachSide) {
  ASSERT_TRUE(start("c1", "a"));
  ASSERT_TRUE(answer("c1", "a", "b", kStart + 1, 1));
  table_.request_seen("c1", "a", "b", 5);  // caller's re-INVITE
  table_.request_seen("c1", "a", "b", 3);  // an older one, late
  table_.request_seen("c1", "b", "a", 7);  // callee's UPDATE
  table_.request_seen("c1", "b", "a", 2);
  table_.request_seen("c1", "x", "b", 99);  // not this dialog
  table_.request_seen("c1", "a", "x", 99);
  table_.request_seen("c1", "b", "x", 99);
  table_.request_seen("c9", "a", "b", 99);
  const std::vector<Dialog> due = table_.take_due(kStart + 2);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].caller_cseq, 5u);
  EXPECT_EQ(due[0].callee_cseq, 7u);
}

TEST_F(DialogTableTest, LimitsAreReleasedExactlyOnce) {
  // Two slots for 1000; ending one call by every path in turn leaves the other slot held.
  ASSERT_EQ(limits_.admit("1000", 0, 0), shield::CallLimits::Refusal::kNone);
  ASSERT_TRUE(start("c1", "a"));
  ASSERT_TRUE(answer("c1", "a", "b", kStart + 1, 5));
  EXPECT_EQ(limits_.active("1000"), 2u);
  EXPECT_TRUE(table_.ended("c1", "a", "b", kStart + 2));
  EXPECT_FALSE(table_.ended("c1", "b", "a", kStart + 2));
  table_.failed("c1", "a", 500, kStart + 2);
  EXPECT_TRUE(table_.take_due(kStart + 10).empty());
  EXPECT_EQ(limits_.active("1000"), 1u);
  EXPECT_EQ(store_.records.size(), 1u);
}

TEST_F(DialogTableTest, EntryWithoutLimitsUserReleasesNothing) {
  ASSERT_EQ(limits_.admit("1000", 0, 0), shield::CallLimits::Refusal::kNone);
  ASSERT_TRUE(table_.begin(invite("c1", "a", "")));
  EXPECT_EQ(table_.active_for("1000"), 0u);
  EXPECT_EQ(table_.active_for(""), 0u);
  table_.failed("c1", "a", 404, kStart + 1);
  EXPECT_EQ(limits_.active("1000"), 1u);
  EXPECT_EQ(store_.records.size(), 1u);  // recorded all the same
}

TEST(DialogTableNullTest, WorksWithoutStoreOrLimits) {
  DialogTable table(nullptr, nullptr);
  ASSERT_TRUE(table.begin(invite("c1", "a")));
  ASSERT_TRUE(table.answered("c1", "a", "b", flow("198.51.100.5", 5062), "sip:b@x", kStart, 1));
  EXPECT_EQ(table.take_due(kStart + 1).size(), 1u);
  ASSERT_TRUE(table.begin(invite("c2", "a")));
  table.failed("c2", "a", 403, kStart);
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(DialogTableTest, ActiveForCountsEntriesPerUser) {
  ASSERT_TRUE(table_.begin(invite("c1", "a", "alice")));
  ASSERT_TRUE(table_.begin(invite("c2", "a", "alice")));
  ASSERT_TRUE(table_.begin(invite("c3", "a", "trunk:carrier")));
  EXPECT_EQ(table_.active_for("alice"), 2u);
  EXPECT_EQ(table_.active_for("trunk:carrier"), 1u);
  EXPECT_EQ(table_.active_for("bob"), 0u);
  EXPECT_EQ(table_.size(), 3u);
}

TEST_F(DialogTableTest, ConcurrentCallsFromManyThreadsAllEndOnce) {
  constexpr int kThreads = 4;
  constexpr int kCalls = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kCalls; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        limits_.admit("1000", 0, 0);
        table_.begin(invite(id, "a"));
        if (i % 2 == 0) {
          answer(id, "a", "b", kStart, 0);
          table_.ended(id, "b", "a", kStart + 1);
        } else {
          table_.failed(id, "a", 487, kStart + 1);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_EQ(limits_.active("1000"), 0u);
  EXPECT_EQ(store_.records.size(), static_cast<std::size_t>(kThreads * kCalls));
}

}  // namespace
}  // namespace proxy

namespace proxy {
namespace {

// Many calls at once, several with one Call-ID (other caller tags: a new call that reuses a
// Call-ID is another dialog), through growth, deadline sweeps and BYEs from either side:
// every call is found by its own tags, and ends once.
TEST(DialogTableManyTest, ThousandsOfCallsSharingCallIdsEachEndOnce) {
  RecordingStore store;
  DialogTable table(&store, nullptr);
  constexpr int kCalls = 6000;
  const auto call_id = [](int i) { return "call-" + std::to_string(i / 3) + "@192.0.2.10"; };
  const auto tag = [](int i) { return "from-" + std::to_string(i); };
  for (int i = 0; i < kCalls; ++i) ASSERT_TRUE(table.begin(invite(call_id(i), tag(i), "")));
  EXPECT_FALSE(table.begin(invite(call_id(7), tag(7), "")));  // a retransmission
  for (int i = 0; i < kCalls; ++i) {
    // Every other call gets a deadline: the sweep below takes those.
    ASSERT_TRUE(table.answered(call_id(i), tag(i), "to-" + std::to_string(i),
                               flow("198.51.100.5", 5062), "sip:1001@198.51.100.5", kStart,
                               i % 2 == 0 ? 60 : 0));
  }
  EXPECT_EQ(table.size(), static_cast<std::size_t>(kCalls));
  const std::vector<Dialog> due = table.take_due(kStart + 60);
  EXPECT_EQ(due.size(), static_cast<std::size_t>(kCalls / 2));
  EXPECT_EQ(table.size(), static_cast<std::size_t>(kCalls / 2));
  for (int i = 0; i < kCalls; ++i) {
    const std::string to = "to-" + std::to_string(i);
    // The callee hangs up half the rest: the tags come the other way round.
    const bool ended = i % 4 == 1 ? table.ended(call_id(i), to, tag(i), kStart + 61)
                                  : table.ended(call_id(i), tag(i), to, kStart + 61);
    EXPECT_EQ(ended, i % 2 == 1) << i;
  }
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(store.records.size(), static_cast<std::size_t>(kCalls));
}

}  // namespace
}  // namespace proxy
