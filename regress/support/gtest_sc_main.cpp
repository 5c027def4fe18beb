// sc_main for GoogleTest binaries: libsystemc owns main() and calls this.
// Each test that simulates creates its own fabric::KernelContext, and
// gtest_discover_tests runs every test in a separate process.
#include <gtest/gtest.h>

#include <systemc>

#include "fabric/kernel/kernel_context.h"

int sc_main(int argc, char** argv) {
  pciesim::fabric::configure_systemc_process();
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
