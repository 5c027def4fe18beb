#include "fabric/config_space/config_space.h"

#include <linux/pci_regs.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "fabric/common/error.h"

namespace pciesim::fabric {

std::uint32_t ConfigWrite::field(std::uint32_t v, std::uint16_t at, unsigned len) const {
  std::uint32_t out = 0;
  for (unsigned i = 0; i < len; ++i) {
    unsigned pos = at + i;
    if (pos < offset || pos >= offset + size) continue;
    out |= ((v >> (8 * (pos - offset))) & 0xffu) << (8 * i);
  }
  return out;
}

ConfigSpace::ConfigSpace(std::uint16_t size)
    : size_(size), layout_(std::make_shared<ConfigLayout>()) {
  if (size != kConfigSpaceSize && size != kLegacyConfigSize)
    throw ModelError("config_space",
                     "config space size must be 256 or 4096, got " + std::to_string(size));
}

std::uint64_t ConfigSpace::next_generation() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

ConfigSpace ConfigSpace::sharing_layout_of(const ConfigSpace& other) {
  ConfigSpace cs(other);
  cs.data_ = other.layout_->reset_image;
  cs.listener_ = nullptr;
  return cs;
}

bool ConfigSpace::valid_access(std::uint16_t offset, unsigned size) {
  return (size == 1 || size == 2 || size == 4) && offset % size == 0 &&
         offset + size <= kConfigSpaceSize;
}

ConfigLayout& ConfigSpace::mutable_layout() {
  if (layout_.use_count() > 1) layout_ = std::make_shared<ConfigLayout>(*layout_);
  return *layout_;
}

std::uint32_t ConfigSpace::read_raw(std::uint16_t off, unsigned size) const {
  // Config space is little endian, like the hosts pciesim builds on.
  std::uint32_t v = 0;
  std::memcpy(&v, data_.data() + off, size);
  return v;
}

std::uint32_t ConfigSpace::read(std::uint16_t offset, unsigned size) {
  if (offset >= size_) return 0;
  if (listener_) {
    for (const ConfigWatch& w : layout_->read_watches)
      if (offset < w.offset + w.length && offset + size > w.offset)
        listener_->config_before_read(*this, w.id);
  }
  return read_raw(offset, size);
}

void ConfigSpace::write(std::uint16_t offset, unsigned size, std::uint32_t value) {
  if (offset >= size_) return;  // writes to unimplemented space are dropped
  const ConfigLayout& l = *layout_;
  std::uint32_t old_value = read_raw(offset, size);
  for (unsigned i = 0; i < size; ++i) {
    unsigned o = offset + i;
    std::uint8_t b = static_cast<std::uint8_t>(value >> (8 * i));
    std::uint8_t wm = l.write_mask[o];
    std::uint8_t cm = l.w1c_mask[o];
    std::uint8_t d = static_cast<std::uint8_t>((data_[o] & ~wm) | (b & wm));
    d = static_cast<std::uint8_t>(d & ~(b & cm));
    data_[o] = d;
  }
  touch();
  if (!listener_) return;
  ConfigWrite w{offset, size, old_value, read_raw(offset, size), value};
  // Callbacks may change masks (copy-on-write): iterate over a snapshot.
  std::vector<ConfigWatch> watches = l.write_watches;
  for (const ConfigWatch& cw : watches)
    if (offset < cw.offset + cw.length && offset + size > cw.offset)
      listener_->config_written(*this, cw.id, w);
}

void ConfigSpace::set16(std::uint16_t off, std::uint16_t v) {
  data_[off] = static_cast<std::uint8_t>(v);
  data_[off + 1] = static_cast<std::uint8_t>(v >> 8);
  touch();
}
void ConfigSpace::set32(std::uint16_t off, std::uint32_t v) {
  for (unsigned i = 0; i < 4; ++i)
    data_[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
  touch();
}
void ConfigSpace::set_bits16(std::uint16_t off, std::uint16_t bits, bool on) {
  std::uint16_t v = get16(off);
  set16(off, on ? static_cast<std::uint16_t>(v | bits) : static_cast<std::uint16_t>(v & ~bits));
}

void ConfigSpace::define(std::uint16_t off, unsigned size, std::uint32_t value,
                         std::uint32_t write_mask, std::uint32_t w1c_mask,
                         std::uint32_t sticky_mask) {
  if (off + size > size_) throw ModelError("config_space", "register beyond config space");
  ConfigLayout& l = mutable_layout();
  l.caps_cached = false;
  for (unsigned i = 0; i < size; ++i) {
    unsigned o = off + i;
    auto byte = [i](std::uint32_t v) { return static_cast<std::uint8_t>(v >> (8 * i)); };
    data_[o] = byte(value);
    l.reset_image[o] = byte(value);
    l.write_mask[o] = byte(write_mask);
    l.w1c_mask[o] = byte(w1c_mask);
    l.sticky_mask[o] = byte(sticky_mask);
  }
  touch();
}

void ConfigSpace::set_write_mask(std::uint16_t off, unsigned size, std::uint32_t mask) {
  if (write_mask(off, size) == mask) return;  // avoid needless copy-on-write
  ConfigLayout& l = mutable_layout();
  for (unsigned i = 0; i < size; ++i)
    l.write_mask[off + i] = static_cast<std::uint8_t>(mask >> (8 * i));
}

std::uint32_t ConfigSpace::write_mask(std::uint16_t off, unsigned size) const {
  std::uint32_t v = 0;
  for (unsigned i = 0; i < size; ++i)
    v |= static_cast<std::uint32_t>(layout_->write_mask[off + i]) << (8 * i);
  return v;
}

void ConfigSpace::set_flr_keep(std::uint16_t off, unsigned size, std::uint32_t mask) {
  ConfigLayout& l = mutable_layout();
  for (unsigned i = 0; i < size; ++i)
    l.flr_keep_mask[off + i] = static_cast<std::uint8_t>(mask >> (8 * i));
}

void ConfigSpace::capture_reset_value(std::uint16_t off, unsigned size) {
  ConfigLayout& l = mutable_layout();
  for (unsigned i = 0; i < size; ++i)
    l.reset_image[off + i] = data_[off + i];
}

void ConfigSpace::watch_writes(std::uint16_t off, std::uint16_t len, int id) {
  mutable_layout().write_watches.push_back({off, len, id});
}

void ConfigSpace::watch_reads(std::uint16_t off, std::uint16_t len, int id) {
  mutable_layout().read_watches.push_back({off, len, id});
}

void ConfigSpace::mark_allocated(std::uint16_t off, std::uint16_t len) {
  ConfigLayout& l = mutable_layout();
  for (unsigned i = off; i < off + len && i < kConfigSpaceSize; ++i)
    l.allocated.set(i);
}

bool ConfigSpace::is_allocated(std::uint16_t off, std::uint16_t len) const {
  for (unsigned i = off; i < off + len; ++i)
    if (i >= size_ || layout_->allocated.test(i)) return true;
  return false;
}

void ConfigSpace::reset(ResetKind kind) {
  const ConfigLayout& l = *layout_;
  for (unsigned o = 0; o < size_; ++o) {
    std::uint8_t keep = 0;
    if (kind != ResetKind::kFundamental) keep = l.sticky_mask[o];
    if (kind == ResetKind::kFlr) keep = static_cast<std::uint8_t>(keep | l.flr_keep_mask[o]);
    data_[o] = static_cast<std::uint8_t>((data_[o] & keep) | (l.reset_image[o] & ~keep));
  }
  touch();
}

std::vector<std::uint16_t> ConfigSpace::capability_offsets() const {
  std::vector<std::uint16_t> out;
  if (!(get16(PCI_STATUS) & PCI_STATUS_CAP_LIST)) return out;
  std::uint8_t header = data_[PCI_HEADER_TYPE] & 0x7f;
  std::uint16_t ptr_reg =
      header == PCI_HEADER_TYPE_CARDBUS ? PCI_CB_CAPABILITY_LIST : PCI_CAPABILITY_LIST;
  std::uint16_t pos = data_[ptr_reg] & 0xfc;
  // A malformed list (loop, pointer into the header) ends the walk: at most
  // 48 capabilities fit in 192 bytes.
  for (int guard = 0; pos >= 0x40 && guard < 48; ++guard) {
    out.push_back(pos);
    pos = data_[pos + 1] & 0xfc;
  }
  return out;
}

std::vector<std::uint16_t> ConfigSpace::extended_capability_offsets() const {
  std::vector<std::uint16_t> out;
  if (size_ <= kLegacyConfigSize) return out;
  std::uint16_t pos = kExtendedCapBase;
  for (int guard = 0; pos >= kExtendedCapBase && guard < 960; ++guard) {
    std::uint32_t header = get32(pos);
    if (header == 0 || header == 0xffffffff) break;
    out.push_back(pos);
    pos = static_cast<std::uint16_t>(PCI_EXT_CAP_NEXT(header));
  }
  return out;
}

void ConfigSpace::fill_cap_cache() const {
  const ConfigLayout& l = *layout_;
  l.cap_offset.fill(0);
  l.ext_cap_offset.fill(0);
  // The first occurrence of an ID wins, as in a list walk.
  for (std::uint16_t pos : capability_offsets())
    if (data_[pos] < l.cap_offset.size() && !l.cap_offset[data_[pos]])
      l.cap_offset[data_[pos]] = pos;
  for (std::uint16_t pos : extended_capability_offsets()) {
    unsigned id = PCI_EXT_CAP_ID(get32(pos));
    if (id < l.ext_cap_offset.size() && !l.ext_cap_offset[id]) l.ext_cap_offset[id] = pos;
  }
  l.caps_cached = true;
}

std::uint16_t ConfigSpace::find_capability(std::uint8_t id) const {
  if (id >= 32) {
    for (std::uint16_t pos : capability_offsets())
      if (data_[pos] == id) return pos;
    return 0;
  }
  if (!layout_->caps_cached) fill_cap_cache();
  return layout_->cap_offset[id];
}

std::uint16_t ConfigSpace::find_extended_capability(std::uint16_t id) const {
  if (id >= 64) {
    for (std::uint16_t pos : extended_capability_offsets())
      if (PCI_EXT_CAP_ID(get32(pos)) == id) return pos;
    return 0;
  }
  if (!layout_->caps_cached) fill_cap_cache();
  return layout_->ext_cap_offset[id];
}

}  // namespace pciesim::fabric
