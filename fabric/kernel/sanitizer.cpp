#include "fabric/kernel/sanitizer.h"

#if defined(__SANITIZE_ADDRESS__)
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>

#include <cstddef>
#endif

namespace pciesim::fabric {

void back_on_thread_stack() {
#if defined(__SANITIZE_ADDRESS__)
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  void* bottom = nullptr;
  std::size_t size = 0;
  const bool ok = pthread_attr_getstack(&attr, &bottom, &size) == 0;
  pthread_attr_destroy(&attr);
  if (!ok) return;
  // A switch from "wherever ASan thinks we are" to this thread's stack.
  __sanitizer_start_switch_fiber(nullptr, bottom, size);
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

void fresh_coroutine_stack() {
#if defined(__SANITIZE_ADDRESS__)
  // Ask ASan which stack it believes is current: a switch "to" a dummy
  // stack reports the one left, and a second switch restores it.
  static char dummy[64];
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_start_switch_fiber(nullptr, dummy, sizeof dummy);
  __sanitizer_finish_switch_fiber(nullptr, &bottom, &size);
  __sanitizer_start_switch_fiber(nullptr, bottom, size);
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
  char* lo = static_cast<char*>(const_cast<void*>(bottom));
  char* here = static_cast<char*>(__builtin_frame_address(0));
  if (!lo || here <= lo || here >= lo + size) return;  // not a stack ASan knows
  // Everything below this function's frame pointer: the callers' live
  // frames are above it; what is below belongs to this call (redzones the
  // epilogue clears anyway) and to the uninstrumented runtime.
  __asan_unpoison_memory_region(lo, static_cast<std::size_t>(here - lo));
#endif
}

}  // namespace pciesim::fabric
