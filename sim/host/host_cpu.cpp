#include "sim/host/host_cpu.h"

#include <cstring>

#include <cstdio>
#include "fabric/common/error.h"
#include "fabric/config_space/config_space.h"

#include "fabric/kernel/completion_ledger.h"
#include "fabric/kernel/trace.h"
#include "fabric/port/port.h"

namespace pciesim::sim {

using namespace fabric;

HostCpu::HostCpu(sc_core::sc_module_name name, std::uint64_t ecam_base, models::HostMemory& memory)
    : sc_core::sc_module(name), socket("socket"), ecam_base_(ecam_base), memory_(memory) {}

void HostCpu::sleep(Time t) {
  if (t > 0) sc_core::wait(to_sc(t));
}

CplStatus HostCpu::access(std::uint64_t addr, std::uint8_t* data, unsigned size, bool write) {
  tlm::tlm_generic_payload gp;
  TlpExtension ext;
  gp.set_extension(&ext);
  gp.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
  gp.set_address(addr);
  gp.set_data_ptr(data);
  gp.set_data_length(size);
  gp.set_streaming_width(size);
  gp.set_byte_enable_ptr(nullptr);
  gp.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  ext.requester = RoutingId(0, 0, 0);
  // Reads (config, MMIO) and config writes are non-posted; MMIO writes are
  // posted. The root complex answers for the CPU (RRS retries, timeouts).
  const bool config = addr >= ecam_base_ && addr < ecam_base_ + (256ull << 20);
  fabric::CompletionLedger* ledger = (!write || config) ? fabric::completion_ledger() : nullptr;
  const std::uint64_t id =
      ledger
          ? ledger->open(ext.requester,
                         config ? (write ? TlpKind::CfgWr0 : TlpKind::CfgRd0) : TlpKind::MRd, addr)
          : 0;
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  socket->b_transport(gp, delay);
  gp.clear_extension(&ext);
  const Time t0 = now_fs();
  if (ledger) ledger->close(id, ext.status, t0 + delay.value(), ext.trace_id, 0, t0);
  if (fabric::trace_sink()) {
    char what[96];
    std::snprintf(what, sizeof what, "%s 0x%llx",
                  config ? (write ? "CfgWr" : "CfgRd") : (write ? "MWr" : "MRd"),
                  static_cast<unsigned long long>(addr));
    fabric::trace_slice(
        t0, t0 + delay.value(), "host", "cpu", what,
        std::string("size=") + std::to_string(size) + ", status=" + to_string(ext.status),
        ext.trace_id);
  }
  // The host is software: it does not run ahead of the kernel.
  sc_core::wait(delay);
  return ext.status;
}

std::uint32_t HostCpu::config_read(RoutingId rid, std::uint16_t reg, unsigned size,
                                   CplStatus* status) {
  if (!ConfigSpace::valid_access(reg, size))
    throw UsageError("host", "config read of " + std::to_string(size) + " bytes at offset " +
                                 std::to_string(reg) + " is not naturally aligned inside 4 KiB");
  std::uint8_t buf[4] = {};
  ++stats_.config_reads;
  CplStatus s = access(ecam_base_ + config_address(rid, reg), buf, size, false);
  if (s == CplStatus::kRRS)
    ++stats_.rrs_visible;
  else if (s != CplStatus::kSC)
    ++stats_.all_ones_reads;
  if (status) *status = s;
  std::uint32_t v = 0;
  std::memcpy(&v, buf, size);
  return v;
}

void HostCpu::config_write(RoutingId rid, std::uint16_t reg, unsigned size, std::uint32_t value,
                           CplStatus* status) {
  if (!ConfigSpace::valid_access(reg, size))
    throw UsageError("host", "config write of " + std::to_string(size) + " bytes at offset " +
                                 std::to_string(reg) + " is not naturally aligned inside 4 KiB");
  std::uint8_t buf[4];
  std::memcpy(buf, &value, 4);
  ++stats_.config_writes;
  CplStatus s = access(ecam_base_ + config_address(rid, reg), buf, size, true);
  if (status) *status = s;
}

std::uint64_t HostCpu::mmio_read(std::uint64_t addr, unsigned size, CplStatus* status) {
  if (size != 1 && size != 2 && size != 4 && size != 8)
    throw UsageError("host", "MMIO reads are 1, 2, 4 or 8 bytes");
  std::uint8_t buf[8] = {};
  ++stats_.mmio_reads;
  CplStatus s = access(addr, buf, size, false);
  if (s != CplStatus::kSC) ++stats_.all_ones_reads;
  if (status) *status = s;
  std::uint64_t v = 0;
  std::memcpy(&v, buf, size);
  return v;
}

void HostCpu::mmio_write(std::uint64_t addr, unsigned size, std::uint64_t value) {
  if (size != 1 && size != 2 && size != 4 && size != 8)
    throw UsageError("host", "MMIO writes are 1, 2, 4 or 8 bytes");
  std::uint8_t buf[8];
  std::memcpy(buf, &value, 8);
  ++stats_.mmio_writes;
  access(addr, buf, size, true);
}

std::uint32_t HostCpu::config_peek(RoutingId rid, std::uint16_t reg, unsigned size) {
  std::uint8_t buf[4] = {0xff, 0xff, 0xff, 0xff};
  tlm::tlm_generic_payload gp;
  gp.set_command(tlm::TLM_READ_COMMAND);
  gp.set_address(ecam_base_ + config_address(rid, reg));
  gp.set_data_ptr(buf);
  gp.set_data_length(size);
  socket->transport_dbg(gp);
  std::uint32_t v = 0;
  std::memcpy(&v, buf, size);
  return v;
}

}  // namespace pciesim::sim
