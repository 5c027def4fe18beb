#include "sim/host/dma_driver.h"

#include <linux/pci_regs.h>

#include <cstdio>
#include <cstring>

#include "fabric/common/error.h"
#include "fabric/kernel/trace.h"
#include "sim/host/host.h"

namespace pciesim::sim {

using namespace fabric;
namespace dma = models::dma;

HostAllocator::HostAllocator(const std::vector<models::MemoryRange>& ranges) : ranges_(ranges) {
  // Keep the first 16 MiB of the first range for "firmware".
  if (!ranges_.empty())
    next_ = ranges_[0].base + std::min<std::uint64_t>(16 << 20, ranges_[0].size / 2);
}

std::uint64_t HostAllocator::alloc(std::uint64_t bytes, std::uint64_t align) {
  bytes = (bytes + 4095) & ~std::uint64_t{4095};
  while (range_ < ranges_.size()) {
    const models::MemoryRange& r = ranges_[range_];
    std::uint64_t at = (std::max(next_, r.base) + align - 1) / align * align;
    bool moved = false;
    for (const models::MemoryRange& x : reserved_)
      if (at < x.base + x.size && x.base < at + bytes) {
        next_ = x.base + x.size;  // skip past the reservation and try again
        moved = true;
        break;
      }
    if (moved) continue;
    if (at + bytes <= r.base + r.size) {
      next_ = at + bytes;
      if (!handed_.empty() && handed_.back().base + handed_.back().size == at)
        handed_.back().size += bytes;
      else
        handed_.push_back({at, bytes});
      return at;
    }
    ++range_;
    if (range_ < ranges_.size()) next_ = ranges_[range_].base;
  }
  throw UsageError("host", "out of host memory for DMA buffers (" + std::to_string(bytes) +
                               " more bytes requested)");
}

void HostAllocator::reserve(std::uint64_t base, std::uint64_t size) {
  reserved_.push_back({base, size});
}

bool HostAllocator::allocated(std::uint64_t base, std::uint64_t size) const {
  for (const models::MemoryRange& h : handed_)
    if (base < h.base + h.size && h.base < base + size) return true;
  return false;
}

DmaDriver::DmaDriver(Host& host, PciDev& dev, DmaSpace& space)
    : host_(host), dev_(&dev), space_(&space) {}

bool DmaDriver::probe() {
  PciCore& pci = host_.pci();
  bar0_ = pci.bar_address(*dev_, 0);
  if (!bar0_ || pci.bar_size(*dev_, 0) < dma::kBar0Size) {
    error_ = "BAR0 of " + dev_->rid.str() + " is not assigned";
    return false;
  }
  if (!dev_->msix) {
    error_ = dev_->rid.str() + " has no MSI-X capability";
    return false;
  }
  ring_ = space_->alloc(kRingSize * sizeof(dma::Descriptor));
  cq_ = space_->alloc(kRingSize * sizeof(dma::Completion));
  msi_data_ = host_.allocate_msi();
  if (!program()) return false;
  dev_->driver = kName;
  return true;
}

bool DmaDriver::program() {
  PciCore& pci = host_.pci();
  if (fabric::trace_sink())
    fabric::trace_instant(HostCpu::now(), dev_->name, "driver", "program engine");
  std::vector<std::uint8_t> zero(kRingSize * sizeof(dma::Completion), 0);
  host_.cpu().memory().write(cq_.cpu, zero.data(), zero.size());
  host_.cpu().memory().watch(cq_.cpu, zero.size());
  tail_ = cq_head_ = inflight_ = 0;
  pci.enable_memory(*dev_, true);
  pci.set_master(*dev_, true);
  MsixEntry e;
  e.address = host_.msi_address();
  e.data = msi_data_;
  e.masked = false;
  pci.write_msix_entry(*dev_, 0, e);
  pci.enable_msix(*dev_, true);
  if (read_reg(dma::kId) != dma::kIdValue) {
    error_ = dev_->rid.str() + " does not answer as a DMA engine (ID register)";
    return false;
  }
  write_reg(dma::kCtrl, dma::kCtrlReset);
  write_reg(dma::kRingBaseLo, static_cast<std::uint32_t>(ring_.dma));
  write_reg(dma::kRingBaseHi, static_cast<std::uint32_t>(ring_.dma >> 32));
  write_reg(dma::kRingSize, kRingSize);
  write_reg(dma::kCqBaseLo, static_cast<std::uint32_t>(cq_.dma));
  write_reg(dma::kCqBaseHi, static_cast<std::uint32_t>(cq_.dma >> 32));
  write_reg(dma::kIrqVector, 0);
  write_reg(dma::kCtrl, dma::kCtrlEnable | dma::kCtrlIrqEnable);
  return true;
}

bool DmaDriver::reinit() {
  // What the ring held died with the reset; the oldest first.
  const std::uint32_t head = (tail_ + kRingSize - inflight_) % kRingSize;
  for (std::uint32_t i = 0; i < inflight_; ++i)
    aborted_.push_back(cookies_[(head + i) % kRingSize]);
  return program();
}

void DmaDriver::wait_recovery() {
  while (recovering_)
    sc_core::wait(recovered_);
}

void DmaDriver::resume() {
  recovering_ = false;
  recovered_.notify(sc_core::SC_ZERO_TIME);
  if (removed_) return;
  // An engine an error halted runs the rest of its ring again (docs/dma-engine.md).
  const std::uint32_t st = read_reg(dma::kStatus);
  if (st != 0xffffffffu && (st & dma::kStatusHalted)) {
    const std::uint32_t err = read_reg(dma::kError);
    if (err) write_reg(dma::kError, err);
  }
}

void DmaDriver::fail(const std::string& why) {
  recovering_ = false;
  recovered_.notify(sc_core::SC_ZERO_TIME);
  failed_ = why;
}

bool DmaDriver::recovery_expected() {
  if (recovering_) return true;
  if (!failed_.empty() || removed_ || !host_.spec().aer || !dev_->exp) return false;
  const std::uint32_t st = host_.cpu().config_read(dev_->rid, dev_->exp + PCI_EXP_DEVSTA, 2);
  return st != 0xffff && (st & (PCI_EXP_DEVSTA_NFED | PCI_EXP_DEVSTA_FED));
}

void DmaDriver::remove() {
  if (removed_) return;
  if (bar0_) write_reg(dma::kCtrl, 0);
  host_.pci().enable_msix(*dev_, false);
  host_.pci().set_master(*dev_, false);
  dev_->driver.clear();
  removed_ = true;  // dev_ may be destroyed from here on: never touched again
}

void DmaDriver::move_to(PciDev& dev, Vm& vm, std::uint64_t ring_host_shift) {
  dev_ = &dev;
  space_ = &vm;
  bar0_ = host_.pci().bar_address(dev, 0);
  ring_.cpu += ring_host_shift;
  cq_.cpu += ring_host_shift;
  dev.driver = "vfio-pci";  // what the host sees of a guest's driver
}

std::uint32_t DmaDriver::read_reg(std::uint32_t off) {
  return static_cast<std::uint32_t>(host_.cpu().mmio_read(bar0_ + off, 4));
}

void DmaDriver::write_reg(std::uint32_t off, std::uint32_t value) {
  host_.cpu().mmio_write(bar0_ + off, 4, value);
}

std::uint32_t DmaDriver::space() const {
  return kRingSize - 1 - inflight_;
}

std::uint32_t DmaDriver::post(const dma::Descriptor& d) {
  if (space() == 0) throw ModelError("host", "descriptor ring full");
  std::uint32_t index = tail_;
  std::uint8_t buf[sizeof d];
  std::memcpy(buf, &d, sizeof d);
  host_.cpu().memory().write(ring_.cpu + std::uint64_t{index} * sizeof d, buf, sizeof d);
  cookies_[index] = d.cookie;
  tail_ = (tail_ + 1) % kRingSize;
  ++inflight_;
  if (fabric::trace_sink()) {
    char args[96];
    std::snprintf(args, sizeof args, "index=%u, cookie=0x%x, length=%u", index, d.cookie, d.length);
    fabric::trace_instant(HostCpu::now(), dev_->name, "driver", "post", args);
  }
  return index;
}

void DmaDriver::kick() {
  if (fabric::trace_sink())
    fabric::trace_instant(HostCpu::now(), dev_->name, "driver", "kick",
                          "tail=" + std::to_string(tail_));
  write_reg(dma::kRingTail, tail_);
}

bool DmaDriver::reap(dma::Completion* out) {
  if (!aborted_.empty()) {
    *out = dma::Completion{};
    out->cookie = aborted_.front();
    out->status = kAbortedByReset;
    aborted_.erase(aborted_.begin());
    return true;
  }
  const std::uint64_t addr = cq_.cpu + std::uint64_t{cq_head_} * sizeof(dma::Completion);
  std::uint8_t buf[sizeof(dma::Completion)];
  host_.cpu().memory().read(addr, buf, sizeof buf);
  std::memcpy(out, buf, sizeof buf);
  // Cookies are never zero: a zero entry has not been written yet. An
  // error record may carry cookie 0 (the descriptor itself could not be
  // fetched): its ring index names the descriptor.
  if (out->cookie == 0 && out->status == dma::kErrNone) return false;
  if (out->cookie == 0) out->cookie = cookies_[out->index % kRingSize];
  // The engine may have written the entry ahead of the kernel's time
  // (temporal decoupling): act on it no earlier than it reached DRAM.
  const Time visible = host_.cpu().memory().visible_at(addr, sizeof buf);
  if (visible > HostCpu::now()) HostCpu::sleep(visible - HostCpu::now());
  std::memset(buf, 0, sizeof buf);
  host_.cpu().memory().write(addr, buf, sizeof buf);
  cq_head_ = (cq_head_ + 1) % kRingSize;
  if (inflight_) --inflight_;
  if (fabric::trace_sink()) {
    char args[96];
    std::snprintf(args, sizeof args, "cookie=0x%x, status=%u, bytes=%u", out->cookie, out->status,
                  out->bytes);
    fabric::trace_instant(HostCpu::now(), dev_->name, "driver", "reap", args);
  }
  return true;
}

void DmaDriver::wait(bool interrupts, Time timeout) {
  if (!interrupts) {
    HostCpu::sleep(std::min<Time>(timeout, 1 * kUs));  // polling interval
    return;
  }
  sc_core::sc_event& ev = host_.msi_event(msi_data_);
  Time t0 = HostCpu::now();
  sc_core::wait(to_sc(timeout), ev);
  if (HostCpu::now() - t0 < timeout) {
    if (fabric::trace_sink()) fabric::trace_instant(HostCpu::now(), dev_->name, "driver", "irq");
    HostCpu::sleep(host_.spec().interrupt_latency);
  }
}

}  // namespace pciesim::sim
