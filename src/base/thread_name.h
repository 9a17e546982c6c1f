// Names the calling thread (what `top -H`, `ps -L` and perf show), so that an operator can
// tell the workers from the store's writer. Linux keeps 15 bytes; a longer name is cut.
#pragma once

#include <pthread.h>

#include <string>

namespace base {

inline void name_this_thread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace base
