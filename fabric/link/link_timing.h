// Link serialization model (DESIGN.md section 4). Plain C++, no kernel.
//
// A TLP occupies a link direction for
//     wire_bytes * 8 / (lanes * rate * encoding * (1 - dllp - skip))
// where wire_bytes = TLP header + payload (DW padded) + ECRC + framing:
//   * framing: 8 bytes per TLP for 8b/10b (STP, 2-byte sequence number,
//     4-byte LCRC, END) and for 128b/130b (4-byte STP token carrying the
//     sequence number, 4-byte LCRC) -- PCIe Base 4.2.2 / 4.2.7 and 3.6.2;
//     none in gen6 Flit Mode, where the flit's CRC/FEC/DLP bytes are
//     charged through the flit efficiency 236/256 instead (PCIe 6.0 4.2.3).
//   * dllp: Ack and UpdateFC DLLPs (8 bytes on the wire each) sent at the
//     spec's recommended maximum interval: the Ack latency limit of
//     PCIe Base 5.0 Tables 3-7..3-9 (the UpdateFC guideline tables 2-46..2-48
//     hold the same values) in symbol times, for the link's MPS and width.
//     The interval is in symbol times, i.e. per lane, so one DLLP costs
//     8 / (limit * lanes) of the link. Both kinds are charged on every
//     direction, which is exact for bidirectional saturation and an upper
//     bound otherwise. (pcie-bench's model divides by the limit alone,
//     which overstates the cost by the lane count; see docs/timing.md.)
//   * skip: SKP ordered sets, 4 symbols per 1538 symbol times at 8b/10b
//     (4.2.7: every 1180..1538) and one 16-symbol block per 375 blocks at
//     128b/130b (4.2.7.3: every 370..375 blocks); gen6 keeps the latter.
//     We take the least frequent permitted rate.
#pragma once

#include <cstdint>

#include "fabric/common/sim_time.h"
#include "fabric/tlp/tlp.h"

namespace pciesim::fabric {

struct LinkSpeed {
  int generation = 3;  // 1..6
  int width = 8;       // 1, 2, 4, 8, 12, 16, 32
  bool ecrc = false;
};

bool valid_generation(int g);
bool valid_width(int w);
// Link training (PCIe Base 4.0, 4.2.6): the link settles on the highest
// speed both ends support and the widest width both ends (and the link)
// have, rounded down to a width the spec defines.
LinkSpeed train_link(LinkSpeed requested, int up_speed, int up_width, int down_speed,
                     int down_width);
double transfer_rate_gtps(int generation);   // 2.5, 5, 8, 16, 32, 64
double encoding_efficiency(int generation);  // 0.8, 128/130, 236/256 (flit)
// Ack/UpdateFC latency limit in symbol times (see the header comment).
unsigned dllp_interval_symbols(int generation, int width, std::uint32_t mps);

// TLP header size in bytes (3 or 4 DW) for a kind; memory requests above
// 4 GiB need the 4-DW form.
inline unsigned tlp_header_bytes(TlpKind kind, bool addr64) {
  switch (kind) {
    case TlpKind::MRd:
    case TlpKind::MWr:
      return addr64 ? 16 : 12;
    case TlpKind::Msg:
      return 16;
    default:
      return 12;  // Cfg*, Cpl, CplD
  }
}
// Framing overhead per TLP on the wire.
inline unsigned tlp_framing_bytes(int generation) {
  return generation >= 6 ? 0 : 8;
}
constexpr unsigned kDllpWireBytes = 8;

class LinkTiming {
 public:
  LinkTiming() : LinkTiming(LinkSpeed{}, 128) {}
  LinkTiming(const LinkSpeed& speed, std::uint32_t mps);

  const LinkSpeed& speed() const { return speed_; }
  std::uint32_t mps() const { return mps_; }
  void set_mps(std::uint32_t mps);

  // Raw data rate after encoding, both as Gb/s.
  double raw_gbps() const;
  // Rate left for TLP bytes after DLLP and SKIP overheads.
  double tlp_gbps() const;
  double dllp_overhead() const { return dllp_overhead_; }
  double skip_overhead() const { return skip_overhead_; }

  // Bytes a TLP occupies on the wire.
  std::uint32_t wire_bytes(TlpKind kind, std::uint32_t payload_bytes, bool addr64) const {
    const std::uint32_t padded = (payload_bytes + 3u) & ~3u;
    return tlp_header_bytes(kind, addr64) + padded + (speed_.ecrc ? 4u : 0u) +
           tlp_framing_bytes(speed_.generation);
  }
  // Time to serialize `wire` bytes.
  Time serialization(std::uint32_t wire) const {
    return static_cast<Time>(static_cast<double>(wire) * fs_per_byte_ + 0.5);
  }
  Time dllp_time() const { return serialization(kDllpWireBytes); }

 private:
  void recompute();
  LinkSpeed speed_;
  std::uint32_t mps_;
  double dllp_overhead_ = 0;
  double skip_overhead_ = 0;
  double fs_per_byte_ = 0;
};

// Completion TLPs a completer returns for `len` bytes read at `addr` when it
// splits at `chunk`-byte boundaries (RCB or MPS): the first piece ends at the
// next boundary, the rest are whole chunks (PCIe Base 2.3.1.1).
inline unsigned completion_count(std::uint64_t addr, std::uint32_t len, std::uint32_t chunk) {
  if (len == 0 || chunk == 0) return 1;
  const std::uint32_t first = static_cast<std::uint32_t>(chunk - (addr % chunk));
  if (first >= len) return 1;
  return 1 + (len - first + chunk - 1) / chunk;
}

// Independent closed form of the saturated effective bandwidth (payload
// Gb/s) for a stream of `size`-byte DMA writes or reads on one link: the
// "analytic PCIe effective-bandwidth curve" the simulator must reproduce.
// Reads assume enough tags to keep the completion direction busy, with
// completions split into `cpl_chunk`-byte pieces.
struct AnalyticPoint {
  double write_gbps;
  double read_gbps;
};
AnalyticPoint analytic_bandwidth(const LinkSpeed& speed, std::uint32_t mps, std::uint32_t mrrs,
                                 std::uint32_t cpl_chunk, std::uint32_t size, bool addr64);

}  // namespace pciesim::fabric
