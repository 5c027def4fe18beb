// AddressSanitizer and SystemC's coroutines (docs/testing.md).
//
// Debian's SystemC 2.3.4 announces its QuickThreads stack switches to ASan
// (__sanitizer_start/finish_switch_fiber), but not the way back to the
// thread that called sc_start(): the main coroutine has no recorded stack,
// so afterwards ASan believes the caller runs on the last coroutine's
// stack. The first C++ exception thrown there then makes
// __asan_handle_no_return see nonsense bounds ("ASan is ignoring requested
// __asan_handle_no_return", google/sanitizers#189) and report false
// stack-use-after-scope / stack-buffer-overflow errors. The facade calls
// back_on_thread_stack() whenever sc_start() returns: it announces a switch
// to the calling thread's own stack, so ASan's view is right again and any
// report it prints is real. Without ASan it does nothing.
#pragma once

namespace pciesim::fabric {

void back_on_thread_stack();

// SystemC frees and reuses coroutine stacks without unwinding them (a
// process still suspended when its kernel goes away, a finished process's
// last frames), so a new process can start on memory whose shadow still
// holds an old frame's redzones and is then reported as a false
// stack-buffer-overflow or stack-use-after-scope. Every process body of
// ours calls fresh_coroutine_stack() first: it unpoisons the part of the
// current coroutine's stack below its own frame, which holds no live
// object. The bounds are ASan's own (as SystemC announced them); nothing
// outside the stack is touched. Without ASan it does nothing.
void fresh_coroutine_stack();

}  // namespace pciesim::fabric
