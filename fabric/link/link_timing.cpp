#include "fabric/link/link_timing.h"

#include <algorithm>
#include <cmath>

#include "fabric/common/error.h"

namespace pciesim::fabric {

namespace {

// Ack latency limits, symbol times, PCIe Base 5.0 Tables 3-7 (2.5 GT/s),
// 3-8 (5.0 GT/s) and 3-9 (8.0 GT/s and above). Rows: x1 x2 x4 x8 x16 x32
// (x12 uses the x16 row); columns: MPS 128 .. 4096.
constexpr unsigned kAckGen1[6][6] = {
    {237, 416, 559, 1071, 2095, 4143}, {128, 217, 289, 545, 1057, 2081},
    {73, 118, 154, 282, 538, 1050},    {67, 107, 86, 150, 278, 534},
    {48, 72, 86, 150, 278, 534},       {33, 45, 52, 84, 148, 276}};
constexpr unsigned kAckGen2[6][6] = {
    {288, 467, 610, 1122, 2146, 4194}, {179, 268, 340, 596, 1108, 2132},
    {124, 169, 205, 333, 589, 1101},   {118, 158, 137, 201, 329, 585},
    {99, 123, 137, 201, 329, 585},     {84, 96, 103, 135, 199, 237}};
constexpr unsigned kAckGen3[6][6] = {
    {333, 512, 655, 1167, 2191, 4239}, {224, 313, 385, 641, 1153, 2177},
    {169, 214, 250, 378, 634, 1146},   {163, 203, 182, 246, 374, 630},
    {144, 168, 182, 246, 374, 630},    {129, 141, 148, 180, 244, 372}};

unsigned width_row(int width) {
  switch (width) {
    case 1:
      return 0;
    case 2:
      return 1;
    case 4:
      return 2;
    case 8:
      return 3;
    case 12:
    case 16:
      return 4;
    default:
      return 5;
  }
}

unsigned mps_col(std::uint32_t mps) {
  unsigned col = 0;
  for (std::uint32_t v = 128; v < mps && col < 5; v <<= 1)
    ++col;
  return col;
}

}  // namespace

bool valid_generation(int g) {
  return g >= 1 && g <= 6;
}
bool valid_width(int w) {
  return w == 1 || w == 2 || w == 4 || w == 8 || w == 12 || w == 16 || w == 32;
}

LinkSpeed train_link(LinkSpeed requested, int up_speed, int up_width, int down_speed,
                     int down_width) {
  LinkSpeed out = requested;
  out.generation = std::min({requested.generation, up_speed, down_speed});
  out.width = std::min({requested.width, up_width, down_width});
  while (out.width > 1 && !valid_width(out.width))
    --out.width;
  return out;
}

double transfer_rate_gtps(int generation) {
  static const double rates[] = {2.5, 5.0, 8.0, 16.0, 32.0, 64.0};
  return rates[std::clamp(generation, 1, 6) - 1];
}

double encoding_efficiency(int generation) {
  if (generation <= 2) return 8.0 / 10.0;
  if (generation <= 5) return 128.0 / 130.0;
  return 236.0 / 256.0;  // Flit Mode: TLP bytes per 256-byte flit
}

unsigned dllp_interval_symbols(int generation, int width, std::uint32_t mps) {
  unsigned r = width_row(width), c = mps_col(mps);
  if (generation == 1) return kAckGen1[r][c];
  if (generation == 2) return kAckGen2[r][c];
  return kAckGen3[r][c];
}

LinkTiming::LinkTiming(const LinkSpeed& speed, std::uint32_t mps) : speed_(speed), mps_(mps) {
  if (!valid_generation(speed.generation))
    throw ModelError("link",
                     "PCIe generation must be 1..6, got " + std::to_string(speed.generation));
  if (!valid_width(speed.width))
    throw ModelError(
        "link", "link width must be x1/x2/x4/x8/x12/x16/x32, got x" + std::to_string(speed.width));
  recompute();
}

void LinkTiming::set_mps(std::uint32_t mps) {
  if (mps == mps_) return;
  mps_ = mps;
  recompute();
}

void LinkTiming::recompute() {
  if (speed_.generation >= 6) {
    dllp_overhead_ = 0;  // Ack/UpdateFC ride in each flit's DLP bytes
  } else {
    double interval = dllp_interval_symbols(speed_.generation, speed_.width, mps_);
    dllp_overhead_ = 2.0 * kDllpWireBytes / (interval * speed_.width);
  }
  skip_overhead_ = speed_.generation <= 2 ? 4.0 / 1538.0 : 1.0 / 376.0;
  double bits_per_sec = tlp_gbps() * 1e9;
  fs_per_byte_ = 8.0 * 1e15 / bits_per_sec;
}

double LinkTiming::raw_gbps() const {
  return transfer_rate_gtps(speed_.generation) * speed_.width *
         encoding_efficiency(speed_.generation);
}

double LinkTiming::tlp_gbps() const {
  return raw_gbps() * (1.0 - dllp_overhead_ - skip_overhead_);
}

AnalyticPoint analytic_bandwidth(const LinkSpeed& speed, std::uint32_t mps, std::uint32_t mrrs,
                                 std::uint32_t cpl_chunk, std::uint32_t size, bool addr64) {
  // Written out from the definitions rather than through LinkTiming, so the
  // simulator is checked against an independent computation.
  double rate =
      transfer_rate_gtps(speed.generation) * speed.width * encoding_efficiency(speed.generation);
  double dllp =
      speed.generation >= 6
          ? 0.0
          : 16.0 / (dllp_interval_symbols(speed.generation, speed.width, mps) * speed.width);
  double skip = speed.generation <= 2 ? 4.0 / 1538.0 : 1.0 / 376.0;
  double usable = rate * (1.0 - dllp - skip);
  double framing = tlp_framing_bytes(speed.generation) + (speed.ecrc ? 4.0 : 0.0);

  // Writes: ceil(size / MPS) TLPs, each header + framing.
  double wtlps = std::ceil(static_cast<double>(size) / mps);
  double wbytes = size + wtlps * ((addr64 ? 16.0 : 12.0) + framing) +
                  (static_cast<double>((size + 3) & ~3u) - size);
  double write = usable * size / wbytes;

  // Reads: requests ceil(size / MRRS) go one way; completions the other, one
  // per chunk; the completion direction is the bottleneck for any size.
  double requests = std::ceil(static_cast<double>(size) / mrrs);
  double cpls = 0;
  for (double done = 0; done < size; done += mrrs) {
    double piece = std::min<double>(mrrs, size - done);
    cpls += std::ceil(piece / cpl_chunk);
  }
  double cbytes = ((size + 3) & ~3u) + cpls * (12.0 + framing);
  double qbytes = requests * ((addr64 ? 16.0 : 12.0) + framing);
  double read = std::min(usable * size / cbytes, usable * size / qbytes);
  return {write, read};
}

}  // namespace pciesim::fabric
