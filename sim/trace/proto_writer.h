// A minimal protocol-buffers encoder (wire format: varints, length-
// delimited fields, fixed64, doubles), enough for Perfetto's TracePacket.
// No generated code: the field numbers are in perfetto_output.cpp.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace pciesim::sim::trace {

class ProtoWriter {
 public:
  void varint(std::uint32_t field, std::uint64_t v) {
    key(field, 0);
    raw_varint(v);
  }
  void sint(std::uint32_t field, std::int64_t v) { varint(field, static_cast<std::uint64_t>(v)); }
  void fixed64(std::uint32_t field, std::uint64_t v) {
    key(field, 1);
    char b[8];
    std::memcpy(b, &v, 8);  // little-endian hosts only (x86-64, aarch64)
    buf_.append(b, 8);
  }
  void real(std::uint32_t field, double v) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    fixed64(field, bits);
  }
  void bytes(std::uint32_t field, const std::string& s) { bytes(field, s.data(), s.size()); }
  void bytes(std::uint32_t field, const char* p, std::size_t n) {
    key(field, 2);
    raw_varint(n);
    buf_.append(p, n);
  }
  void message(std::uint32_t field, const ProtoWriter& m) { bytes(field, m.buf_); }
  const std::string& data() const { return buf_; }
  void clear() { buf_.clear(); }

 private:
  void key(std::uint32_t field, unsigned wire) { raw_varint((std::uint64_t{field} << 3) | wire); }
  void raw_varint(std::uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
  }
  std::string buf_;
};

}  // namespace pciesim::sim::trace
