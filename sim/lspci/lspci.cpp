#include "sim/lspci/lspci.h"

#include <linux/pci_regs.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <memory>

#include "sim/host/host.h"
#include "sim/lspci/pci_ids.h"

namespace pciesim::sim {

namespace {

class Out {
 public:
  void printf(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s_ += buf;
  }
  void put(const std::string& s) { s_ += s; }
  std::string str() const { return s_; }

 private:
  std::string s_;
};

struct Cfg {
  const LspciFunction& f;
  std::uint8_t b(unsigned o) const { return f.config[o & 0xfff]; }
  std::uint16_t w(unsigned o) const { return static_cast<std::uint16_t>(b(o) | (b(o + 1) << 8)); }
  std::uint32_t l(unsigned o) const { return w(o) | (static_cast<std::uint32_t>(w(o + 2)) << 16); }
};

char flag(std::uint32_t v, std::uint32_t bit) {
  return (v & bit) ? '+' : '-';
}

std::string vendor_device(const LspciOptions& o, std::uint16_t v, std::uint16_t d) {
  if (o.numeric) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04x:%04x", v, d);
    return buf;
  }
  return PciIds::instance().vendor_device(v, d);
}

std::string class_name(const LspciOptions& o, std::uint16_t cls) {
  if (o.numeric) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04x", cls);
    return buf;
  }
  return PciIds::instance().class_name(cls);
}

void terse(Out& out, const LspciFunction& f, const LspciOptions& o) {
  Cfg c{f};
  std::uint16_t cls = c.w(PCI_CLASS_DEVICE);
  out.printf("%02x:%02x.%d %s: %s", f.rid.bus(), f.rid.device(), f.rid.function(),
             class_name(o, cls).c_str(), vendor_device(o, c.w(0), c.w(2)).c_str());
  if (std::uint8_t rev = c.b(PCI_REVISION_ID)) out.printf(" (rev %02x)", rev);
  if (o.verbose) {
    std::uint8_t pif = c.b(PCI_CLASS_PROG);
    std::string x = o.numeric ? "" : PciIds::instance().progif(cls, pif);
    if (pif || !x.empty()) {
      out.printf(" (prog-if %02x", pif);
      if (!x.empty()) out.printf(" [%s]", x.c_str());
      out.put(")");
    }
  }
  out.put("\n");
  if (o.verbose && (c.b(PCI_HEADER_TYPE) & 0x7f) == PCI_HEADER_TYPE_NORMAL) {
    std::uint16_t sv = c.w(PCI_SUBSYSTEM_VENDOR_ID), sd = c.w(PCI_SUBSYSTEM_ID);
    if (sv && sv != 0xffff) {
      std::string name;
      if (o.numeric) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%04x:%04x", sv, sd);
        name = buf;
      } else {
        name = PciIds::instance().subsystem(c.w(0), c.w(2), sv, sd);
      }
      out.printf("\tSubsystem: %s\n", name.c_str());
    }
  }
}

void show_size(Out& out, std::uint64_t x) {
  static const char* suffix[] = {"", "K", "M", "G", "T"};
  if (!x) return;
  unsigned i = 0;
  for (; i < 4; ++i) {
    if (x < 1024) break;
    x /= 1024;
  }
  out.printf(" [size=%u%s]", static_cast<unsigned>(x), suffix[i]);
}

void bases(Out& out, const LspciFunction& f, int cnt) {
  Cfg c{f};
  std::uint16_t cmd = c.w(PCI_COMMAND);
  for (int i = 0; i < cnt; ++i) {
    std::uint32_t flg = c.l(PCI_BASE_ADDRESS_0 + 4 * i);
    if (flg == 0xffffffff) flg = 0;
    std::uint64_t pos = flg & PCI_BASE_ADDRESS_MEM_MASK;
    std::uint64_t len = f.bar_sizes[i];
    int t = flg & PCI_BASE_ADDRESS_MEM_TYPE_MASK;
    std::uint32_t z = 0;
    if (t == PCI_BASE_ADDRESS_MEM_TYPE_64 && i < cnt - 1) {
      z = c.l(PCI_BASE_ADDRESS_0 + 4 * (i + 1));
      pos |= static_cast<std::uint64_t>(z) << 32;
    }
    // A region the OS reports but the device's BAR does not hold: pciutils
    // rebuilds the BAR bits from the OS's flags and marks it [virtual].
    bool virt = false;
    if (!pos && !flg && f.os_addrs[i]) {
      pos = f.os_addrs[i];
      flg = f.os_flags[i];
      t = flg & PCI_BASE_ADDRESS_MEM_TYPE_MASK;
      virt = true;
    }
    if (!pos && !flg && !len) continue;
    out.put("\t");
    out.put("Memory at ");
    int slot = i;
    bool done = false;
    if (t == PCI_BASE_ADDRESS_MEM_TYPE_64) {
      if (i >= cnt - 1) {
        out.put("<invalid-64bit-slot>");
        done = true;
      } else {
        ++i;
      }
    }
    if (!done) {
      if (pos)
        out.printf("%llx", static_cast<unsigned long long>(pos));
      else
        out.put(((flg & PCI_BASE_ADDRESS_MEM_MASK) || z) ? "<ignored>" : "<unassigned>");
    }
    out.printf(" (%s, %sprefetchable)",
               t == PCI_BASE_ADDRESS_MEM_TYPE_32   ? "32-bit"
               : t == PCI_BASE_ADDRESS_MEM_TYPE_64 ? "64-bit"
               : t == PCI_BASE_ADDRESS_MEM_TYPE_1M ? "low-1M"
                                                   : "type 3",
               (flg & PCI_BASE_ADDRESS_MEM_PREFETCH) ? "" : "non-");
    if (virt)
      out.put(" [virtual]");
    else if (!(cmd & PCI_COMMAND_MEMORY))
      out.put(" [disabled]");
    show_size(out, f.bar_sizes[slot]);
    out.put("\n");
  }
}

void caps(Out& out, const LspciFunction& f) {
  Cfg c{f};
  if (!(c.w(PCI_STATUS) & PCI_STATUS_CAP_LIST)) return;
  int where = c.b(PCI_CAPABILITY_LIST) & ~3;
  bool express = false;
  std::uint8_t seen[256] = {};
  while (where) {
    if (where < 0x40 || seen[where]) break;
    seen[where] = 1;
    int id = c.b(where + PCI_CAP_LIST_ID);
    int next = c.b(where + PCI_CAP_LIST_NEXT) & ~3;
    std::uint16_t cap = c.w(where + PCI_CAP_FLAGS);
    out.printf("\tCapabilities: [%02x] ", where);
    switch (id) {
      case PCI_CAP_ID_PM:
        out.printf("Power Management version %d\n", cap & PCI_PM_CAP_VER_MASK);
        break;
      case PCI_CAP_ID_EXP: {
        express = true;
        out.put("Express ");
        switch ((cap & PCI_EXP_FLAGS_TYPE) >> 4) {
          case PCI_EXP_TYPE_ENDPOINT:
            out.put("Endpoint");
            break;
          case PCI_EXP_TYPE_LEG_END:
            out.put("Legacy Endpoint");
            break;
          case PCI_EXP_TYPE_ROOT_PORT:
            out.printf("Root Port (Slot%c)", flag(cap, PCI_EXP_FLAGS_SLOT));
            break;
          case PCI_EXP_TYPE_UPSTREAM:
            out.put("Upstream Port");
            break;
          case PCI_EXP_TYPE_DOWNSTREAM:
            out.printf("Downstream Port (Slot%c)", flag(cap, PCI_EXP_FLAGS_SLOT));
            break;
          default:
            out.printf("Unknown type %d", (cap & PCI_EXP_FLAGS_TYPE) >> 4);
            break;
        }
        out.printf(", MSI %02x\n", (cap & PCI_EXP_FLAGS_IRQ) >> 9);
        break;
      }
      case PCI_CAP_ID_MSIX:
        out.printf("MSI-X: Enable%c Count=%d Masked%c\n", flag(cap, PCI_MSIX_FLAGS_ENABLE),
                   (cap & PCI_MSIX_FLAGS_QSIZE) + 1, flag(cap, PCI_MSIX_FLAGS_MASKALL));
        break;
      default:
        out.printf("Capability ID %#02x [%04x]\n", id, cap);
        break;
    }
    where = next;
  }
  if (!express) return;
  int pos = 0x100;
  std::vector<bool> seen_ext(4096, false);
  while (pos >= 0x100 && pos < 0x1000 && !seen_ext[pos]) {
    seen_ext[pos] = true;
    std::uint32_t header = c.l(pos);
    if (!header || header == 0xffffffff) break;
    int id = header & 0xffff;
    out.printf("\tCapabilities: [%03x] ", pos);
    switch (id) {
      case PCI_EXT_CAP_ID_ERR:
        out.put("Advanced Error Reporting\n");
        break;
      case PCI_EXT_CAP_ID_ACS:
        out.put("Access Control Services\n");
        break;
      case PCI_EXT_CAP_ID_ARI:
        out.put("Alternative Routing-ID Interpretation (ARI)\n");
        break;
      case PCI_EXT_CAP_ID_SRIOV:
        out.put("Single Root I/O Virtualization (SR-IOV)\n");
        break;
      default:
        out.printf("Extended Capability ID %#02x\n", id);
        break;
    }
    pos = PCI_EXT_CAP_NEXT(header);
  }
}

void verbose(Out& out, const LspciFunction& f, const LspciOptions& o) {
  Cfg c{f};
  terse(out, f, o);
  std::uint16_t status = c.w(PCI_STATUS), cmd = c.w(PCI_COMMAND);
  int htype = c.b(PCI_HEADER_TYPE) & 0x7f;
  // pciutils show_verbose: a header type it does not know (0x7f when the
  // function answers all ones) ends the entry there.
  if (htype != PCI_HEADER_TYPE_NORMAL && htype != PCI_HEADER_TYPE_BRIDGE) {
    out.printf("\t!!! Unknown header type %02x\n", htype);
    return;
  }
  out.put("\tFlags: ");
  if (cmd & PCI_COMMAND_MASTER) out.put("bus master, ");
  if (status & PCI_STATUS_66MHZ) out.put("66MHz, ");
  int devsel = status & PCI_STATUS_DEVSEL_MASK;
  out.printf("%s devsel", devsel == PCI_STATUS_DEVSEL_SLOW     ? "slow"
                          : devsel == PCI_STATUS_DEVSEL_MEDIUM ? "medium"
                          : devsel == PCI_STATUS_DEVSEL_FAST   ? "fast"
                                                               : "??");
  if (cmd & PCI_COMMAND_MASTER) out.printf(", latency %d", c.b(PCI_LATENCY_TIMER));
  out.put("\n");
  if (htype == PCI_HEADER_TYPE_NORMAL) {
    bases(out, f, 6);
  } else if (htype == PCI_HEADER_TYPE_BRIDGE) {
    bases(out, f, 2);
    out.printf("\tBus: primary=%02x, secondary=%02x, subordinate=%02x, sec-latency=%d\n",
               c.b(PCI_PRIMARY_BUS), c.b(PCI_SECONDARY_BUS), c.b(PCI_SUBORDINATE_BUS),
               c.b(PCI_SEC_LATENCY_TIMER));
    // pciutils 3.9: "<name>: <base>-<limit> [size=..] [N-bit]" or
    // "<name>: [disabled] [N-bit]".
    auto range = [&](const char* name, std::uint64_t base, std::uint64_t limit, int bits) {
      out.printf("\t%s:", name);
      if (base <= limit) {
        if (bits > 32)
          out.printf(" %016llx-%016llx", static_cast<unsigned long long>(base),
                     static_cast<unsigned long long>(limit));
        else
          out.printf(" %08x-%08x", static_cast<unsigned>(base), static_cast<unsigned>(limit));
        show_size(out, limit - base + 1);
      } else {
        out.put(" [disabled]");
      }
      out.printf(" [%d-bit]\n", bits);
    };
    std::uint32_t io_base = c.b(PCI_IO_BASE), io_limit = c.b(PCI_IO_LIMIT);
    std::uint32_t io_type = io_base & PCI_IO_RANGE_TYPE_MASK;
    if (io_type != (io_limit & PCI_IO_RANGE_TYPE_MASK) ||
        (io_type != PCI_IO_RANGE_TYPE_16 && io_type != PCI_IO_RANGE_TYPE_32)) {
      out.printf("\t!!! Unknown I/O range types %x/%x\n", io_base, io_limit);
    } else {
      std::uint64_t b = (io_base & PCI_IO_RANGE_MASK) << 8;
      std::uint64_t l = ((io_limit & PCI_IO_RANGE_MASK) << 8) | 0xfff;
      if (io_type == PCI_IO_RANGE_TYPE_32) {
        b |= static_cast<std::uint64_t>(c.w(PCI_IO_BASE_UPPER16)) << 16;
        l |= static_cast<std::uint64_t>(c.w(PCI_IO_LIMIT_UPPER16)) << 16;
      }
      range("I/O behind bridge", b, l, io_type == PCI_IO_RANGE_TYPE_32 ? 32 : 16);
    }
    std::uint64_t mb = static_cast<std::uint64_t>(c.w(PCI_MEMORY_BASE) & PCI_MEMORY_RANGE_MASK)
                       << 16;
    std::uint64_t ml =
        (static_cast<std::uint64_t>(c.w(PCI_MEMORY_LIMIT) & PCI_MEMORY_RANGE_MASK) << 16) | 0xfffff;
    range("Memory behind bridge", mb, ml, 32);
    std::uint32_t pbw = c.w(PCI_PREF_MEMORY_BASE), plw = c.w(PCI_PREF_MEMORY_LIMIT);
    bool p64 = (pbw & PCI_PREF_RANGE_TYPE_MASK) == PCI_PREF_RANGE_TYPE_64;
    std::uint64_t pb = static_cast<std::uint64_t>(pbw & PCI_PREF_RANGE_MASK) << 16;
    std::uint64_t pl = (static_cast<std::uint64_t>(plw & PCI_PREF_RANGE_MASK) << 16) | 0xfffff;
    if (p64) {
      pb |= static_cast<std::uint64_t>(c.l(PCI_PREF_BASE_UPPER32)) << 32;
      pl |= static_cast<std::uint64_t>(c.l(PCI_PREF_LIMIT_UPPER32)) << 32;
    }
    range("Prefetchable memory behind bridge", pb, pl, p64 ? 64 : 32);
  }
  caps(out, f);
  if (!f.driver.empty()) out.printf("\tKernel driver in use: %s\n", f.driver.c_str());
}

void hexdump(Out& out, const LspciFunction& f, int level) {
  unsigned cnt = level >= 4 ? 4096 : level >= 3 ? 256 : 64;
  for (unsigned i = 0; i < cnt; ++i) {
    if (!(i & 15)) out.printf("%02x:", i);
    out.printf(" %02x", f.config[i]);
    if ((i & 15) == 15) out.put("\n");
  }
}

// ---- tree (lspci -t), after pciutils' ls-tree ----

struct Bridge;
struct Bus {
  unsigned number;
  std::vector<const LspciFunction*> devices;
};
struct Bridge {
  const LspciFunction* dev = nullptr;
  unsigned primary = 0, secondary = 0, subordinate = 0;
  std::vector<Bridge*> children;
  std::vector<std::unique_ptr<Bus>> buses;  // first = secondary bus
  Bus* bus(unsigned n) {
    for (auto& b : buses)
      if (b->number == n) return b.get();
    return nullptr;
  }
};

class Tree {
 public:
  Tree(const std::vector<LspciFunction>& fns, const LspciOptions& o) : o_(o) {
    host_.primary = ~0u;
    host_.secondary = 0;
    host_.subordinate = ~0u;
    for (const LspciFunction& f : fns) {
      Cfg c{f};
      if ((c.w(PCI_CLASS_DEVICE) >> 8) == 0x06 /* bridge */ &&
          (c.b(PCI_HEADER_TYPE) & 0x7f) == PCI_HEADER_TYPE_BRIDGE) {
        auto b = std::make_unique<Bridge>();
        b->dev = &f;
        b->primary = c.b(PCI_PRIMARY_BUS);
        b->secondary = c.b(PCI_SECONDARY_BUS);
        b->subordinate = c.b(PCI_SUBORDINATE_BUS);
        bridges_.push_back(std::move(b));
      }
    }
    // Parent of each bridge: the narrowest bridge whose range holds its
    // primary bus.
    for (auto& b : bridges_) {
      Bridge* best = &host_;
      for (auto& c : bridges_)
        if (c.get() != b.get() && b->primary >= c->secondary && b->primary <= c->subordinate &&
            c->subordinate - c->secondary < best->subordinate - best->secondary)
          best = c.get();
      best->children.push_back(b.get());
    }
    all_.push_back(&host_);
    for (auto& b : bridges_)
      all_.push_back(b.get());
    for (Bridge* b : all_)
      if (!b->bus(b->secondary)) b->buses.push_back(std::make_unique<Bus>(Bus{b->secondary, {}}));
    for (const LspciFunction& f : fns)
      insert(&f, &host_);
  }

  std::string render() {
    char line[1024];
    show_bridge(&host_, line, line);
    return out_.str();
  }

 private:
  void insert(const LspciFunction* f, Bridge* b) {
    Bus* bus = b->bus(f->rid.bus());
    if (!bus) {
      for (Bridge* c : b->children)
        if (c->secondary <= f->rid.bus() && f->rid.bus() <= c->subordinate) {
          insert(f, c);
          return;
        }
      b->buses.push_back(std::make_unique<Bus>(Bus{f->rid.bus(), {}}));
      bus = b->buses.back().get();
    }
    bus->devices.push_back(f);
  }

  void print_it(char* line, char* p) {
    *p++ = '\n';
    *p = 0;
    out_.put(line);
    for (p = line; *p; ++p)
      *p = (*p == '+' || *p == '|') ? '|' : ' ';
  }

  void show_dev(const LspciFunction* d, char* line, char* p) {
    p += std::sprintf(p, "%02x.%x", d->rid.device(), d->rid.function());
    for (Bridge* b : all_)
      if (b->dev == d) {
        if (b->secondary == b->subordinate)
          p += std::sprintf(p, "-[%02x]-", b->secondary);
        else
          p += std::sprintf(p, "-[%02x-%02x]-", b->secondary, b->subordinate);
        show_bridge(b, line, p);
        return;
      }
    if (o_.verbose) {
      Cfg c{*d};
      p += std::sprintf(p, "  %s", vendor_device(o_, c.w(0), c.w(2)).c_str());
    }
    print_it(line, p);
  }

  void show_bus(Bus* b, char* line, char* p) {
    if (b->devices.empty()) {
      print_it(line, p);
    } else if (b->devices.size() == 1) {
      *p++ = '-';
      *p++ = '-';
      show_dev(b->devices[0], line, p);
    } else {
      for (std::size_t i = 0; i + 1 < b->devices.size(); ++i) {
        p[0] = '+';
        p[1] = '-';
        show_dev(b->devices[i], line, p + 2);
      }
      p[0] = '\\';
      p[1] = '-';
      show_dev(b->devices.back(), line, p + 2);
    }
  }

  void show_bridge(Bridge* b, char* line, char* p) {
    *p++ = '-';
    // pciutils 3.9 lists a bridge's buses in ascending order (3.7 kept the
    // most recently added first).
    std::vector<Bus*> order;
    for (auto& bus : b->buses)
      order.push_back(bus.get());
    std::sort(order.begin(), order.end(), [](Bus* x, Bus* y) { return x->number < y->number; });
    if (order.size() == 1) {
      if (b == &host_) p += std::sprintf(p, "[0000:%02x]-", order[0]->number);
      show_bus(order[0], line, p);
    } else {
      for (std::size_t i = 0; i + 1 < order.size(); ++i) {
        char* k = p + std::sprintf(p, "+-[0000:%02x]-", order[i]->number);
        show_bus(order[i], line, k);
      }
      char* k = p + std::sprintf(p, "\\-[0000:%02x]-", order.back()->number);
      show_bus(order.back(), line, k);
    }
  }

  const LspciOptions& o_;
  Bridge host_;
  std::vector<std::unique_ptr<Bridge>> bridges_;
  std::vector<Bridge*> all_;
  Out out_;
};

}  // namespace

LspciFunction lspci_function(Host& host, PciDev& d) {
  LspciFunction f;
  f.rid = d.rid;
  for (unsigned off = 0; off < 4096; off += 4) {
    std::uint32_t v = host.cpu().config_peek(d.rid, static_cast<std::uint16_t>(off), 4);
    for (unsigned i = 0; i < 4; ++i)
      f.config[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
  }
  f.driver = d.driver;
  for (unsigned i = 0; i < 6; ++i)
    f.bar_sizes[i] = host.pci().bar_size(d, i);
  if (d.is_vf && d.physfn)
    for (unsigned i = 0; i < 6; ++i) {
      const PciBar& b = d.physfn->vf_bars[i];
      if (!b.size) continue;
      f.os_addrs[i] = host.pci().bar_address(d, i);
      f.os_flags[i] = static_cast<std::uint32_t>((b.is64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
                                                 (b.pref ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0));
    }
  return f;
}

std::vector<LspciFunction> lspci_snapshot(Host& host) {
  std::vector<LspciFunction> out;
  for (PciDev* d : host.pci().devices())
    out.push_back(lspci_function(host, *d));
  return out;
}

std::string format_lspci(const std::vector<LspciFunction>& fns, const LspciOptions& o) {
  if (o.tree) return Tree(fns, o).render();
  Out out;
  for (const LspciFunction& f : fns) {
    if (o.verbose)
      verbose(out, f, o);
    else
      terse(out, f, o);
    if (o.hex) hexdump(out, f, o.hex);
    if (o.verbose || o.hex) out.put("\n");
  }
  return out.str();
}

}  // namespace pciesim::sim
