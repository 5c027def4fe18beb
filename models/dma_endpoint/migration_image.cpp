#include "models/dma_endpoint/migration_image.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace pciesim::models::mig {

bool EngineRegsState::operator==(const EngineRegsState& o) const {
  return ctrl == o.ctrl && ring_base == o.ring_base && ring_size == o.ring_size && head == o.head &&
         tail == o.tail && cq_base == o.cq_base && cq_tail == o.cq_tail &&
         completed == o.completed && error == o.error && error_addr == o.error_addr &&
         irq_vector == o.irq_vector && max_reads == o.max_reads && prefetch == o.prefetch &&
         bytes_read == o.bytes_read && bytes_written == o.bytes_written && halted == o.halted;
}

bool FinishState::operator==(const FinishState& o) const {
  return index == o.index && cookie == o.cookie && flags == o.flags && status == o.status &&
         bytes == o.bytes && record_done == o.record_done;
}

bool ProgressState::operator==(const ProgressState& o) const {
  return fetch_index == o.fetch_index && in_progress == o.in_progress &&
         desc_index == o.desc_index && desc_done == o.desc_done && finish == o.finish;
}

std::uint32_t crc32(const std::uint8_t* data, std::uint64_t length, std::uint32_t crc) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::uint64_t i = 0; i < length; ++i)
    crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

namespace {

constexpr std::uint32_t kRegsBytes = 84;
constexpr std::uint32_t kFinishBytes = 24;
const char kCreator[] = "pciesim dma-engine firmware 1.0";

class Writer {
 public:
  explicit Writer(std::vector<std::uint8_t>& out) : out_(out) {}
  void u16(std::uint16_t v) { put(v, 2); }
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void bytes(const std::uint8_t* p, std::size_t n) { out_.insert(out_.end(), p, p + n); }
  // Opens a record; close_record() fills in its length.
  std::size_t open_record(std::uint16_t type, bool mandatory) {
    u16(type);
    u16(mandatory ? kRecMandatory : 0);
    const std::size_t at = out_.size();
    u32(0);
    ++records_;
    return at;
  }
  void close_record(std::size_t at) {
    const std::uint32_t len = static_cast<std::uint32_t>(out_.size() - at - 4);
    for (int i = 0; i < 4; ++i)
      out_[at + i] = static_cast<std::uint8_t>(len >> (8 * i));
  }
  std::uint32_t records() const { return records_; }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i)
      out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::vector<std::uint8_t>& out_;
  std::uint32_t records_ = 0;
};

class Reader {
 public:
  Reader(const std::uint8_t* p, std::uint64_t n) : p_(p), n_(n) {}
  bool need(std::uint64_t k) const { return pos_ + k <= n_; }
  std::uint64_t get(int k) {
    std::uint64_t v = 0;
    for (int i = 0; i < k; ++i)
      v |= std::uint64_t{p_[pos_ + i]} << (8 * i);
    pos_ += k;
    return v;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(get(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(get(4)); }
  std::uint64_t u64() { return get(8); }
  const std::uint8_t* here() const { return p_ + pos_; }
  void skip(std::uint64_t k) { pos_ += k; }
  std::uint64_t pos() const { return pos_; }
  std::uint64_t left() const { return n_ - pos_; }

 private:
  const std::uint8_t* p_;
  std::uint64_t n_;
  std::uint64_t pos_ = 0;
};

// Runs of consecutive pages, each becoming one device-memory record.
template <class F>
void for_each_run(const FunctionState& s, F&& f) {
  auto it = s.pages.begin();
  while (it != s.pages.end()) {
    auto end = it;
    std::uint64_t next = it->first;
    std::size_t count = 0;
    while (end != s.pages.end() && end->first == next) {
      next += kPageBytes;
      ++count;
      ++end;
    }
    f(it, count);
    it = end;
  }
}

}  // namespace

std::uint64_t encoded_size(const FunctionState& s) {
  std::uint64_t n = kHeaderBytes;
  n += kRecordHeaderBytes + 16;          // geometry
  n += kRecordHeaderBytes + kRegsBytes;  // registers
  n += kRecordHeaderBytes + 20 + kFinishBytes * s.progress.finish.size();
  n += kRecordHeaderBytes + s.msix_table.size();
  n += kRecordHeaderBytes + 8 + 8 * s.pba.size();
  for_each_run(s, [&](auto, std::size_t count) {
    n += kRecordHeaderBytes + 8 + count * std::uint64_t{kPageBytes};
  });
  n += kRecordHeaderBytes + sizeof kCreator - 1;
  return n;
}

std::uint64_t max_image_size(std::uint64_t devmem_size, std::uint32_t vectors) {
  FunctionState s;
  s.msix_table.assign(std::size_t{vectors} * 16, 0);
  s.pba.assign((vectors + 63) / 64, 0);
  // Every descriptor of the largest ring may be finished but unreported.
  s.progress.finish.resize(65536);
  return encoded_size(s) + kRecordHeaderBytes + 8 + devmem_size;
}

std::vector<std::uint8_t> encode(const FunctionState& s, const ImageIdentity& id,
                                 std::uint32_t flags) {
  std::vector<std::uint8_t> out;
  out.reserve(encoded_size(s));
  Writer w(out);
  w.u32(kMagic);
  w.u16(kVersionMajor);
  w.u16(kVersionMinor);
  w.u16(id.vendor_id);
  w.u16(id.device_id);
  w.u32(flags);
  w.u64(0);  // length, crc and record count are filled in below
  w.u32(0);
  w.u32(0);
  std::size_t r = w.open_record(kRecGeometry, true);
  w.u64(s.devmem_size);
  w.u32(s.vectors);
  w.u32(kPageBytes);
  w.close_record(r);
  r = w.open_record(kRecEngineRegs, true);
  const EngineRegsState& g = s.regs;
  w.u32(g.ctrl);
  w.u64(g.ring_base);
  w.u32(g.ring_size);
  w.u32(g.head);
  w.u32(g.tail);
  w.u64(g.cq_base);
  w.u32(g.cq_tail);
  w.u32(g.completed);
  w.u32(g.error);
  w.u64(g.error_addr);
  w.u32(g.irq_vector);
  w.u32(g.max_reads);
  w.u32(g.prefetch);
  w.u64(g.bytes_read);
  w.u64(g.bytes_written);
  w.u32(g.halted ? 1 : 0);
  w.close_record(r);
  r = w.open_record(kRecProgress, true);
  const ProgressState& p = s.progress;
  w.u32(p.fetch_index);
  w.u32(p.in_progress ? 1 : 0);
  w.u32(p.desc_index);
  w.u32(p.desc_done);
  w.u32(static_cast<std::uint32_t>(p.finish.size()));
  for (const FinishState& f : p.finish) {
    w.u32(f.index);
    w.u32(f.cookie);
    w.u32(f.flags);
    w.u32(f.status);
    w.u32(f.bytes);
    w.u32(f.record_done ? 1 : 0);
  }
  w.close_record(r);
  r = w.open_record(kRecMsixTable, true);
  w.bytes(s.msix_table.data(), s.msix_table.size());
  w.close_record(r);
  r = w.open_record(kRecMsixPba, true);
  w.u32(s.msix_resend ? 1 : 0);
  w.u32(static_cast<std::uint32_t>(s.pba.size()));
  for (std::uint64_t q : s.pba)
    w.u64(q);
  w.close_record(r);
  for_each_run(s, [&](auto it, std::size_t count) {
    const std::size_t rr = w.open_record(kRecDevmem, true);
    w.u64(it->first);
    for (std::size_t i = 0; i < count; ++i, ++it)
      w.bytes(it->second.data(), kPageBytes);
    w.close_record(rr);
  });
  r = w.open_record(kRecCreator, false);
  w.bytes(reinterpret_cast<const std::uint8_t*>(kCreator), sizeof kCreator - 1);
  w.close_record(r);
  const std::uint64_t len = out.size();
  const std::uint32_t crc = crc32(out.data() + kHeaderBytes, len - kHeaderBytes);
  const std::uint32_t records = w.records();
  for (int i = 0; i < 8; ++i)
    out[16 + i] = static_cast<std::uint8_t>(len >> (8 * i));
  for (int i = 0; i < 4; ++i) {
    out[24 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
    out[28 + i] = static_cast<std::uint8_t>(records >> (8 * i));
  }
  return out;
}

const char* image_error_name(ImageError e) {
  switch (e) {
    case ImageError::kNone:
      return "none";
    case ImageError::kTruncated:
      return "truncated";
    case ImageError::kBadMagic:
      return "magic";
    case ImageError::kVersion:
      return "version";
    case ImageError::kWrongDevice:
      return "device";
    case ImageError::kChecksum:
      return "checksum";
    case ImageError::kUnknownMandatory:
      return "unknown_record";
    case ImageError::kOversize:
      return "oversize_record";
    case ImageError::kMalformed:
      return "malformed";
  }
  return "?";
}

namespace {

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Decodes one image's records (already checked for header, length and
// CRC) into `img`; `seen` collects the mandatory record types present.
bool decode_records(Reader& r, std::uint64_t base, std::uint32_t count, std::uint64_t devmem_size,
                    std::uint32_t vectors, FunctionState* img, DecodeResult* res) {
  auto fail = [&](ImageError e, std::uint64_t at, const std::string& m) {
    res->error = e;
    res->offset = base + at;
    res->message = m + " at byte " + std::to_string(base + at);
    return false;
  };
  const std::uint64_t max_record =
      std::max<std::uint64_t>(devmem_size + 8, 20 + kFinishBytes * std::uint64_t{65536});
  unsigned seen = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint64_t at = r.pos();
    if (!r.need(kRecordHeaderBytes))
      return fail(ImageError::kMalformed, at, "record " + std::to_string(i) + " header cut off");
    const std::uint16_t type = r.u16();
    const std::uint16_t flags = r.u16();
    const std::uint32_t len = r.u32();
    if (len > max_record)
      return fail(ImageError::kOversize, at,
                  "record type " + std::to_string(type) + " of " + std::to_string(len) +
                      " bytes exceeds what the device holds (" + std::to_string(max_record) + ")");
    if (!r.need(len))
      return fail(ImageError::kMalformed, at,
                  "record type " + std::to_string(type) + " runs past the end of its image");
    Reader p(r.here(), len);
    r.skip(len);
    auto short_rec = [&](const char* what) {
      return fail(ImageError::kMalformed, at,
                  std::string(what) + " record has a wrong length (" + std::to_string(len) + ")");
    };
    switch (type) {
      case kRecGeometry: {
        if (len != 16) return short_rec("geometry");
        const std::uint64_t size = p.u64();
        const std::uint32_t vec = p.u32();
        const std::uint32_t page = p.u32();
        if (size != devmem_size || vec != vectors || page != kPageBytes)
          return fail(ImageError::kWrongDevice, at,
                      "image of a function with " + std::to_string(size) +
                          " bytes of device memory and " + std::to_string(vec) +
                          " MSI-X vectors; this one has " + std::to_string(devmem_size) + " and " +
                          std::to_string(vectors));
        img->devmem_size = size;
        img->vectors = vec;
        break;
      }
      case kRecEngineRegs: {
        if (len != kRegsBytes) return short_rec("engine register");
        EngineRegsState& g = img->regs;
        g.ctrl = p.u32();
        g.ring_base = p.u64();
        g.ring_size = p.u32();
        g.head = p.u32();
        g.tail = p.u32();
        g.cq_base = p.u64();
        g.cq_tail = p.u32();
        g.completed = p.u32();
        g.error = p.u32();
        g.error_addr = p.u64();
        g.irq_vector = p.u32();
        g.max_reads = p.u32();
        g.prefetch = p.u32();
        g.bytes_read = p.u64();
        g.bytes_written = p.u64();
        g.halted = p.u32() != 0;
        break;
      }
      case kRecProgress: {
        if (len < 20) return short_rec("progress");
        ProgressState& g = img->progress;
        g.fetch_index = p.u32();
        g.in_progress = p.u32() != 0;
        g.desc_index = p.u32();
        g.desc_done = p.u32();
        const std::uint32_t n = p.u32();
        if (len != 20 + std::uint64_t{n} * kFinishBytes) return short_rec("progress");
        g.finish.resize(n);
        for (FinishState& f : g.finish) {
          f.index = p.u32();
          f.cookie = p.u32();
          f.flags = p.u32();
          f.status = p.u32();
          f.bytes = p.u32();
          f.record_done = p.u32() != 0;
        }
        break;
      }
      case kRecMsixTable:
        if (len != std::uint64_t{vectors} * 16) return short_rec("MSI-X table");
        img->msix_table.assign(p.here(), p.here() + len);
        break;
      case kRecMsixPba: {
        if (len < 8) return short_rec("MSI-X PBA");
        img->msix_resend = p.u32() != 0;
        const std::uint32_t n = p.u32();
        if (n != (vectors + 63) / 64 || len != 8 + 8ull * n) return short_rec("MSI-X PBA");
        img->pba.resize(n);
        for (std::uint64_t& q : img->pba)
          q = p.u64();
        break;
      }
      case kRecDevmem: {
        if (len < 8 || (len - 8) % kPageBytes) return short_rec("device memory");
        const std::uint64_t off = p.u64();
        const std::uint64_t bytes = len - 8;
        if (off % kPageBytes || off > devmem_size || bytes > devmem_size - off)
          return fail(ImageError::kMalformed, at,
                      "device-memory record at offset " + hex(off) + " of " +
                          std::to_string(bytes) + " bytes lies outside the device memory");
        for (std::uint64_t k = 0; k < bytes; k += kPageBytes)
          img->pages[off + k].assign(p.here() + k, p.here() + k + kPageBytes);
        break;
      }
      default:
        if (flags & kRecMandatory)
          return fail(ImageError::kUnknownMandatory, at,
                      "unknown mandatory record type " + std::to_string(type));
        ++res->skipped_records;
        continue;
    }
    if (type < 16) seen |= 1u << type;
  }
  if (r.left())
    return fail(ImageError::kMalformed, r.pos(),
                std::to_string(r.left()) + " bytes after the last record");
  const unsigned needed = (1u << kRecGeometry) | (1u << kRecEngineRegs) | (1u << kRecProgress) |
                          (1u << kRecMsixTable) | (1u << kRecMsixPba);
  if ((seen & needed) != needed)
    return fail(ImageError::kMalformed, 0, "image lacks a mandatory state record");
  // The engine state must be one the engine can be in (a crafted image
  // with a valid checksum is still refused).
  const EngineRegsState& g = img->regs;
  const std::uint32_t n = g.ring_size;
  const bool ring_ok = n == 0 || (n >= 2 && n <= 65536 && (n & (n - 1)) == 0);
  auto in_ring = [&](std::uint32_t i) { return n ? i < n : i == 0; };
  bool ok = ring_ok && in_ring(g.head) && in_ring(g.tail) && in_ring(g.cq_tail & (n ? n - 1 : 0)) &&
            g.prefetch >= 1 && g.prefetch <= 32 && in_ring(img->progress.fetch_index) &&
            (!img->progress.in_progress || in_ring(img->progress.desc_index)) &&
            img->progress.finish.size() <= std::max<std::uint32_t>(n, 1);
  for (const FinishState& f : img->progress.finish)
    ok = ok && in_ring(f.index);
  if (!ok)
    return fail(ImageError::kMalformed, 0,
                "engine state out of range (ring size " + std::to_string(n) + ", head " +
                    std::to_string(g.head) + ", tail " + std::to_string(g.tail) + ")");
  return true;
}

}  // namespace

DecodeResult decode_stream(const std::uint8_t* data, std::uint64_t length, const ImageIdentity& id,
                           std::uint64_t devmem_size, std::uint32_t vectors) {
  DecodeResult res;
  auto fail = [&](ImageError e, std::uint64_t at, const std::string& m) {
    res.error = e;
    res.offset = at;
    res.message = m + " at byte " + std::to_string(at);
    return res;
  };
  std::uint64_t pos = 0;
  bool final_seen = false;
  FunctionState acc;
  while (pos < length) {
    if (final_seen) return fail(ImageError::kMalformed, pos, "data after the final image");
    if (length - pos < kHeaderBytes)
      return fail(ImageError::kTruncated, pos,
                  "stream ends inside an image header (" + std::to_string(length - pos) + " of " +
                      std::to_string(kHeaderBytes) + " bytes)");
    Reader h(data + pos, kHeaderBytes);
    const std::uint32_t magic = h.u32();
    const std::uint16_t major = h.u16();
    const std::uint16_t minor = h.u16();
    const std::uint16_t vendor = h.u16();
    const std::uint16_t device = h.u16();
    const std::uint32_t flags = h.u32();
    const std::uint64_t len = h.u64();
    const std::uint32_t crc = h.u32();
    const std::uint32_t count = h.u32();
    (void)minor;  // minor versions only add optional records
    if (magic != kMagic)
      return fail(ImageError::kBadMagic, pos,
                  "no image header (magic " + hex(magic) + ", expected " + hex(kMagic) + ")");
    if (major != kVersionMajor)
      return fail(ImageError::kVersion, pos,
                  "image format version " + std::to_string(major) + "." + std::to_string(minor) +
                      " (this device reads version " + std::to_string(kVersionMajor) + ")");
    if (vendor != id.vendor_id || device != id.device_id)
      return fail(ImageError::kWrongDevice, pos,
                  "image of device " + hex(vendor) + ":" + hex(device) + ", this one is " +
                      hex(id.vendor_id) + ":" + hex(id.device_id));
    if (len < kHeaderBytes)
      return fail(ImageError::kMalformed, pos, "image length " + std::to_string(len));
    if (len > length - pos)
      return fail(ImageError::kTruncated, pos,
                  "image of " + std::to_string(len) + " bytes, only " +
                      std::to_string(length - pos) + " in the stream");
    if (crc32(data + pos + kHeaderBytes, len - kHeaderBytes) != crc)
      return fail(ImageError::kChecksum, pos, "image checksum mismatch");
    const bool full = flags & kImageFull;
    if ((res.images == 0) != full)
      return fail(ImageError::kMalformed, pos,
                  res.images == 0 ? "the stream does not start with a full image"
                                  : "a full image in the middle of the stream");
    FunctionState img;
    Reader r(data + pos + kHeaderBytes, len - kHeaderBytes);
    if (!decode_records(r, pos + kHeaderBytes, count, devmem_size, vectors, &img, &res)) {
      res.state = FunctionState{};
      return res;
    }
    if (full) {
      acc = std::move(img);
    } else {
      std::map<std::uint64_t, std::vector<std::uint8_t>> pages = std::move(acc.pages);
      for (auto& [off, bytes] : img.pages)
        pages[off] = std::move(bytes);
      acc = std::move(img);
      acc.pages = std::move(pages);
    }
    final_seen = flags & kImageFinal;
    ++res.images;
    pos += len;
  }
  if (!final_seen)
    return fail(ImageError::kTruncated, pos,
                res.images == 0 ? "empty stream" : "stream ends without its final image");
  res.state = std::move(acc);
  return res;
}

}  // namespace pciesim::models::mig
