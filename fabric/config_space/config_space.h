// A function's configuration space: bytes plus parallel masks (DESIGN.md
// section 5, in the spirit of QEMU's byte-mask config space).
//
//   write mask   1 = the bit is RW for software
//   w1c mask     1 = the bit is RW1C (writing 1 clears it)
//   sticky mask  1 = the bit keeps its value across FLR and conventional
//                    reset (only a fundamental reset clears it)
//   flr-keep     1 = the bit keeps its value across FLR only (e.g. SR-IOV
//                    ARI Capable Hierarchy, SPEC.md D)
//   reset image  the value the remaining bits take on reset
//
// The masks live in a ConfigLayout that functions with identical registers
// share (all VFs of one PF), copied on first modification. State-dependent
// rules are expressed by changing masks (NumVFs becomes read-only while VF
// Enable is set). Owners watch register ranges and get a callback after a
// write, or before a read for registers whose value is computed on demand.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace pciesim::fabric {

constexpr std::uint16_t kConfigSpaceSize = 4096;
constexpr std::uint16_t kLegacyConfigSize = 256;
constexpr std::uint16_t kExtendedCapBase = 0x100;

enum class ResetKind {
  kFlr,           // Function Level Reset
  kConventional,  // hot reset, warm reset, D3hot->D0 with No_Soft_Reset=0
  kFundamental,   // cold reset: sticky bits are lost too
};

struct ConfigWatch {
  std::uint16_t offset;
  std::uint16_t length;
  int id;
};

struct ConfigLayout {
  std::array<std::uint8_t, kConfigSpaceSize> write_mask{};
  std::array<std::uint8_t, kConfigSpaceSize> w1c_mask{};
  std::array<std::uint8_t, kConfigSpaceSize> sticky_mask{};
  std::array<std::uint8_t, kConfigSpaceSize> flr_keep_mask{};
  std::array<std::uint8_t, kConfigSpaceSize> reset_image{};
  std::vector<ConfigWatch> write_watches;
  std::vector<ConfigWatch> read_watches;
  std::bitset<kConfigSpaceSize> allocated;  // bytes owned by header or a capability
  // Capability offsets by ID, filled on first lookup. Capability pointers
  // are read-only bytes, identical for every space sharing this layout;
  // define() (the builders) clears the cache.
  mutable bool caps_cached = false;
  mutable std::array<std::uint16_t, 32> cap_offset{};
  mutable std::array<std::uint16_t, 64> ext_cap_offset{};
};

// One config access as seen by a write watcher: the naturally aligned access
// and the register bytes before and after it.
struct ConfigWrite {
  std::uint16_t offset;
  unsigned size;
  std::uint32_t old_value;
  std::uint32_t new_value;
  std::uint32_t written;  // what software wrote, before masking
  // Old/new value of `len` bytes at `at` if the access covered them.
  bool covers(std::uint16_t at, unsigned len = 1) const {
    return at < offset + size && at + len > offset;
  }
  std::uint32_t old_field(std::uint16_t at, unsigned len) const {
    return field(old_value, at, len);
  }
  std::uint32_t new_field(std::uint16_t at, unsigned len) const {
    return field(new_value, at, len);
  }
  std::uint32_t written_field(std::uint16_t at, unsigned len) const {
    return field(written, at, len);
  }

 private:
  std::uint32_t field(std::uint32_t v, std::uint16_t at, unsigned len) const;
};

class ConfigSpace;

class ConfigListener {
 public:
  virtual ~ConfigListener() = default;
  virtual void config_written(ConfigSpace& cs, int watch_id, const ConfigWrite& w) = 0;
  virtual void config_before_read(ConfigSpace& cs, int watch_id) {}
};

class ConfigSpace {
 public:
  // A new space with its own layout; `size` is 4096 (PCIe) or 256.
  explicit ConfigSpace(std::uint16_t size = kConfigSpaceSize);
  // A space sharing `other`'s layout and starting from its reset image.
  static ConfigSpace sharing_layout_of(const ConfigSpace& other);

  ConfigSpace(const ConfigSpace&) = default;
  ConfigSpace& operator=(const ConfigSpace&) = default;
  ConfigSpace(ConfigSpace&&) = default;
  ConfigSpace& operator=(ConfigSpace&&) = default;

  std::uint16_t size() const { return size_; }

  // --- software view (config requests) ---
  // Naturally aligned 1/2/4-byte access inside size(); anything else is a
  // caller bug (the host API rejects it before it gets here). Reads beyond
  // size() return 0 as unimplemented registers do.
  std::uint32_t read(std::uint16_t offset, unsigned size);
  void write(std::uint16_t offset, unsigned size, std::uint32_t value);
  static bool valid_access(std::uint16_t offset, unsigned size);

  // --- hardware view (the device itself), no masks, no callbacks ---
  std::uint8_t get8(std::uint16_t off) const { return data_[off]; }
  std::uint16_t get16(std::uint16_t off) const {
    std::uint16_t v;
    std::memcpy(&v, data_.data() + off, 2);
    return v;
  }
  std::uint32_t get32(std::uint16_t off) const {
    std::uint32_t v;
    std::memcpy(&v, data_.data() + off, 4);
    return v;
  }
  void set8(std::uint16_t off, std::uint8_t v) {
    data_[off] = v;
    touch();
  }
  void set16(std::uint16_t off, std::uint16_t v);
  void set32(std::uint16_t off, std::uint32_t v);
  void set_bits16(std::uint16_t off, std::uint16_t bits, bool on);
  const std::uint8_t* bytes() const { return data_.data(); }
  // Changes whenever a register value changes (software or hardware view,
  // reset, definition). Values are unique across all spaces of the process
  // and a copy carries its source's, so state derived from the registers
  // (decode windows, ACS controls) can be cached and trusted while the
  // generation is the one it was computed at.
  std::uint64_t generation() const { return gen_; }

  // --- register definition (builders) ---
  // Defines `size` bytes at `off`: value (also the reset image) and masks.
  void define(std::uint16_t off, unsigned size, std::uint32_t value, std::uint32_t write_mask = 0,
              std::uint32_t w1c_mask = 0, std::uint32_t sticky_mask = 0);
  void set_write_mask(std::uint16_t off, unsigned size, std::uint32_t mask);
  std::uint32_t write_mask(std::uint16_t off, unsigned size) const;
  void set_flr_keep(std::uint16_t off, unsigned size, std::uint32_t mask);
  // Makes the current value of [off, off+size) the reset image.
  void capture_reset_value(std::uint16_t off, unsigned size);
  void watch_writes(std::uint16_t off, std::uint16_t len, int id);
  void watch_reads(std::uint16_t off, std::uint16_t len, int id);
  void set_listener(ConfigListener* l) { listener_ = l; }

  void reset(ResetKind kind);

  // Allocation map used by the capability builders.
  void mark_allocated(std::uint16_t off, std::uint16_t len);
  bool is_allocated(std::uint16_t off, std::uint16_t len) const;

  // Capability walking. Return the capability's offset or 0.
  std::uint16_t find_capability(std::uint8_t id) const;
  std::uint16_t find_extended_capability(std::uint16_t id) const;
  std::vector<std::uint16_t> capability_offsets() const;
  std::vector<std::uint16_t> extended_capability_offsets() const;

 private:
  ConfigLayout& mutable_layout();
  void fill_cap_cache() const;
  std::uint32_t read_raw(std::uint16_t off, unsigned size) const;

  static std::uint64_t next_generation();
  void touch() { gen_ = next_generation(); }

  std::uint16_t size_;
  std::uint64_t gen_ = next_generation();
  std::array<std::uint8_t, kConfigSpaceSize> data_{};
  std::shared_ptr<ConfigLayout> layout_;
  ConfigListener* listener_ = nullptr;
};

}  // namespace pciesim::fabric
