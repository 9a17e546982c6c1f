// Wake-ups a thread holds back while it hands out a burst of work.
//
// The store's writer runs the callbacks of a whole commit group one after another, and each
// may hand an answer to a worker (transport::Mailbox). Waking the worker at the first one let
// it take that answer and go back to sleep while the writer went on: the next callback found
// the worker's queue empty and woke it again, about two wake-ups per commit where one does.
// Inside a WakeBatch, a mailbox that would wake its worker asks to be woken when the batch
// ends instead; each is woken once, however many tasks it got. A worker's own batch of
// datagrams holds its hand-offs to other workers the same way.
//
// Scopes nest on a thread: the wake-ups wait for the outermost one to end. Whatever defers a
// wake-up must outlive the scope (mailboxes live as long as their transport).
#pragma once

#include <vector>

namespace base {

class WakeBatch {
 public:
  WakeBatch() { ++state().depth; }
  ~WakeBatch() {
    State& s = state();
    if (--s.depth > 0) return;
    // At depth 0 defer() no longer touches the list, so a wake may itself defer nothing.
    for (const Deferred& d : s.deferred) d.wake(d.target);
    s.deferred.clear();
  }
  WakeBatch(const WakeBatch&) = delete;
  WakeBatch& operator=(const WakeBatch&) = delete;

  // In a batch on this thread: keeps wake(target) for its end (once per target) and returns
  // true. Outside one: returns false, and the caller wakes at once.
  static bool defer(void* target, void (*wake)(void*)) {
    State& s = state();
    if (s.depth == 0) return false;
    for (const Deferred& d : s.deferred) {
      if (d.target == target) return true;
    }
    s.deferred.push_back({target, wake});
    return true;
  }

 private:
  struct Deferred {
    void* target;
    void (*wake)(void*);
  };
  struct State {
    int depth = 0;
    std::vector<Deferred> deferred;
  };
  static State& state() {
    static thread_local State s;
    return s;
  }
};

}  // namespace base
