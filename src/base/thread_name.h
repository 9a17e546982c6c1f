// Names a thread (what `top -H`, `ps -L` and perf show), so that an operator can tell the
// workers from the store's writer. Named by its creator right after creation, so the name is
// there before anything the thread does can be seen. Linux keeps 15 bytes; a longer name is cut.
#pragma once

#include <pthread.h>

#include <string>
#include <thread>

namespace base {

inline void name_thread(std::thread& thread, const std::string& name) {
  pthread_setname_np(thread.native_handle(), name.substr(0, 15).c_str());
}

}  // namespace base
