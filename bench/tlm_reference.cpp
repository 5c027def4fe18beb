// The speed reference for bench/run_bench.py: a bare TLM-2.0 b_transport
// loop (one initiator thread with a quantum keeper, a memory target that
// copies 256 bytes), measured in the same run as the simulator. Prints
// "transactions_per_second <n>".
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>
#include <tlm_utils/tlm_quantumkeeper.h>
#include <systemc>
#include <tlm>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

struct Target : sc_core::sc_module {
  tlm_utils::simple_target_socket<Target> socket;
  std::vector<unsigned char> mem = std::vector<unsigned char>(1 << 20);
  explicit Target(sc_core::sc_module_name n) : sc_module(n), socket("socket") {
    socket.register_b_transport(this, &Target::b_transport);
  }
  void b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
    std::memcpy(mem.data() + (gp.get_address() & 0xfff00), gp.get_data_ptr(), gp.get_data_length());
    delay += sc_core::sc_time(1, sc_core::SC_NS);
    gp.set_response_status(tlm::TLM_OK_RESPONSE);
  }
};

struct Initiator : sc_core::sc_module {
  SC_HAS_PROCESS(Initiator);
  tlm_utils::simple_initiator_socket<Initiator> socket;
  long count;
  Initiator(sc_core::sc_module_name n, long c) : sc_module(n), socket("socket"), count(c) {
    SC_THREAD(run);
  }
  void run() {
    tlm_utils::tlm_quantumkeeper qk;
    qk.set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
    qk.reset();
    unsigned char buf[256] = {};
    tlm::tlm_generic_payload gp;
    gp.set_data_ptr(buf);
    gp.set_data_length(sizeof buf);
    gp.set_streaming_width(sizeof buf);
    gp.set_command(tlm::TLM_WRITE_COMMAND);
    for (long i = 0; i < count; ++i) {
      sc_core::sc_time d = qk.get_local_time();
      gp.set_address(static_cast<sc_dt::uint64>(i) * 256);
      socket->b_transport(gp, d);
      qk.set(d);
      if (qk.need_sync()) qk.sync();
    }
  }
};

}  // namespace

int sc_main(int argc, char** argv) {
  long n = argc > 1 ? std::atol(argv[1]) : 20000000;
  Initiator init("initiator", n);
  Target target("target");
  init.socket.bind(target.socket);
  auto t0 = std::chrono::steady_clock::now();
  sc_core::sc_start();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("transactions_per_second %.0f\n", n / s);
  return 0;
}
