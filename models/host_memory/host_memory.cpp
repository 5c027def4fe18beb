#include "models/host_memory/host_memory.h"

#include <algorithm>
#include <cstring>

#include "fabric/common/error.h"
#include "fabric/port/port.h"
#include "fabric/tlp/tlp.h"

namespace pciesim::models {

using fabric::Time;

HostMemory::HostMemory(sc_core::sc_module_name name, const HostMemoryParams& params)
    : sc_core::sc_module(name),
      socket("socket"),
      params_(params),
      cache_(params.llc_bytes, params.ddio_bytes) {
  socket.register_b_transport(this, &HostMemory::b_transport);
  socket.register_transport_dbg(this, &HostMemory::transport_dbg);
  if (params_.bandwidth_gbps > 0) fs_per_byte_ = 8.0 * 1e15 / (params_.bandwidth_gbps * 1e9);
}

Time HostMemory::access_latency(std::uint64_t addr, std::uint64_t len, bool write) {
  if (!cache_.enabled() || len == 0) return last_latency_ = params_.latency;
  if (write) {
    // DDIO: the write lands in the LLC (updated in place or allocated in
    // the I/O ways); DRAM sees it only when the line is evicted.
    cache_.dma_write(addr, len);
    return last_latency_ = params_.llc_latency;
  }
  return last_latency_ = cache_.dma_read(addr, len) ? params_.llc_latency : params_.latency;
}

bool HostMemory::contains(std::uint64_t addr, std::uint64_t len) const {
  for (const MemoryRange& r : params_.ranges)
    if (r.contains(addr, len)) return true;
  return false;
}

void HostMemory::check(std::uint64_t addr, std::size_t len) const {
  if (!contains(addr, len)) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "0x%llx..+0x%zx is not host memory",
                  static_cast<unsigned long long>(addr), len);
    throw UsageError(name(), buf);
  }
}

const HostMemory::Page* HostMemory::find_page(std::uint64_t page) const {
  if (page == cached_page_) return cached_;
  auto it = pages_.find(page);
  if (it == pages_.end()) return nullptr;
  cached_page_ = page;
  cached_ = it->second.get();
  return cached_;
}

HostMemory::Page& HostMemory::page_for_write(std::uint64_t page) {
  if (page == cached_page_) return *cached_;
  auto& slot = pages_[page];
  if (!slot) {
    slot = std::make_unique<Page>();
    slot->fill(0);
  }
  cached_page_ = page;
  cached_ = slot.get();
  return *slot;
}

void HostMemory::read(std::uint64_t addr, std::uint8_t* dst, std::size_t len) const {
  check(addr, len);
  while (len > 0) {
    std::uint64_t page = addr >> kPageShift;
    std::size_t off = addr & (kPageSize - 1);
    std::size_t n = std::min<std::size_t>(len, kPageSize - off);
    const Page* p = find_page(page);
    if (p)
      std::memcpy(dst, p->data() + off, n);
    else
      std::memset(dst, 0, n);
    addr += n;
    dst += n;
    len -= n;
  }
}

std::vector<std::uint8_t> HostMemory::read(std::uint64_t addr, std::size_t len) const {
  std::vector<std::uint8_t> out(len);
  read(addr, out.data(), len);
  return out;
}

bool HostMemory::write_burst(std::uint64_t addr, const std::uint8_t* data,
                             std::vector<fabric::BurstTlp>& b, Time delay,
                             fabric::RoutingId requester) {
  std::uint64_t total = 0;
  for (const fabric::BurstTlp& t : b)
    total = std::max<std::uint64_t>(total, t.offset + t.length);
  if (!contains(addr, total)) return false;
  for (fabric::BurstTlp& t : b) {
    const Time arrival = t.time + delay;
    const Time slot = static_cast<Time>(t.length * fs_per_byte_);
    const Time start = book_.reserve(arrival, slot, fabric::now_fs());
    t.consumed = start;
    t.done = std::max(start + access_latency(addr + t.offset, t.length, true), start + slot);
  }
  in_device_write_ = true;
  writer_ = requester;
  write(addr, data, total);
  in_device_write_ = false;
  bytes_written_ += total;
  if (!watched_.empty())
    for (const fabric::BurstTlp& t : b)
      note_device_write(addr + t.offset, t.length, t.consumed);
  return true;
}

void HostMemory::watch(std::uint64_t addr, std::uint64_t len) {
  for (const Watched& w : watched_)
    if (w.base == addr && w.len == len) return;
  watched_.push_back({addr, len, std::vector<Time>((len + 63) / 64, 0)});
}

void HostMemory::note_device_write(std::uint64_t addr, std::uint64_t len, Time at) {
  for (Watched& w : watched_) {
    if (addr >= w.base + w.len || addr + len <= w.base) continue;
    const std::uint64_t lo = std::max(addr, w.base), hi = std::min(addr + len, w.base + w.len);
    for (std::uint64_t line = (lo - w.base) / 64; line <= (hi - 1 - w.base) / 64; ++line)
      w.line_time[line] = std::max(w.line_time[line], at);
  }
}

Time HostMemory::visible_at(std::uint64_t addr, std::uint64_t len) const {
  Time t = 0;
  for (const Watched& w : watched_) {
    if (addr >= w.base + w.len || addr + len <= w.base) continue;
    const std::uint64_t lo = std::max(addr, w.base), hi = std::min(addr + len, w.base + w.len);
    for (std::uint64_t line = (lo - w.base) / 64; line <= (hi - 1 - w.base) / 64; ++line)
      t = std::max(t, w.line_time[line]);
  }
  return t;
}

void HostMemory::write(std::uint64_t addr, const std::uint8_t* src, std::size_t len) {
  check(addr, len);
  if (on_write)
    on_write(addr, len, in_device_write_, in_device_write_ ? writer_ : fabric::RoutingId());
  if (!in_device_write_ && cache_.enabled()) cache_.cpu_write(addr, len);
  while (len > 0) {
    std::uint64_t page = addr >> kPageShift;
    std::size_t off = addr & (kPageSize - 1);
    std::size_t n = std::min<std::size_t>(len, kPageSize - off);
    std::memcpy(page_for_write(page).data() + off, src, n);
    addr += n;
    src += n;
    len -= n;
  }
}

void HostMemory::b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  const std::uint64_t addr = gp.get_address();
  const std::uint32_t len = gp.get_data_length();
  fabric::TlpExtension* ext = gp.get_extension<fabric::TlpExtension>();
  if (!contains(addr, len)) {
    if (ext) ext->status = fabric::CplStatus::kUR;
    gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return;
  }
  // The controller serves one access at a time at its sustained bandwidth;
  // the data is usable `latency` after the access starts.
  const Time now = fabric::now_fs();
  const Time arrival = now + delay.value();
  // The controller's bandwidth, booked by time (interval_book.h).
  const Time slot = static_cast<Time>(len * fs_per_byte_);
  const Time start = book_.reserve(arrival, slot, now);
  const Time latency = access_latency(addr, len, gp.is_write());
  if (gp.is_write()) {
    in_device_write_ = true;
    writer_ = ext ? ext->requester : fabric::RoutingId();
    write(addr, gp.get_data_ptr(), len);
    in_device_write_ = false;
    bytes_written_ += len;
    if (!watched_.empty()) note_device_write(addr, len, start);
  } else {
    read(addr, gp.get_data_ptr(), len);
    bytes_read_ += len;
  }
  const Time done = std::max(start + latency, start + slot);
  if (ext) {
    ext->consumed_at = start;
    ext->status = fabric::CplStatus::kSC;
    // The controller streams data out as it comes: the first completion's
    // worth is ready after the latency.
    ext->cpl_first =
        std::min(done, start + latency + static_cast<Time>(ext->cpl_chunk * fs_per_byte_));
  }
  gp.set_response_status(tlm::TLM_OK_RESPONSE);
  delay = fabric::to_sc(done - now);
}

unsigned HostMemory::transport_dbg(tlm::tlm_generic_payload& gp) {
  const std::uint64_t addr = gp.get_address();
  const std::uint32_t len = gp.get_data_length();
  if (!contains(addr, len)) return 0;
  if (gp.is_write())
    write(addr, gp.get_data_ptr(), len);
  else
    read(addr, gp.get_data_ptr(), len);
  return len;
}

}  // namespace pciesim::models
