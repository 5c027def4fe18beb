#include "fabric/port/port.h"

#include <algorithm>

#include "fabric/kernel/trace.h"

namespace pciesim::fabric {

namespace {
// Requests with at most this much payload may pass queued completions.
constexpr std::uint32_t kSmallRequestBytes = 64;
}  // namespace

Port::Port(sc_core::sc_module_name name, PortOwner& owner, bool upstream_end, int index)
    : sc_core::sc_module(name),
      rx("rx"),
      tx("tx"),
      owner_(owner),
      upstream_end_(upstream_end),
      index_(index) {
  rx.register_b_transport(this, &Port::b_transport);
  rx.register_transport_dbg(this, &Port::transport_dbg);
}

void Port::connect(Port& upper, Port& lower, Link& link) {
  upper.tx.bind(lower.rx);
  lower.tx.bind(upper.rx);
  upper.link_ = &link;
  lower.link_ = &link;
  upper.peer_ = &lower;
  lower.peer_ = &upper;
}

void Port::b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  owner_.port_receive(*this, gp, delay);
}

unsigned Port::transport_dbg(tlm::tlm_generic_payload& gp) {
  return owner_.port_receive_dbg(*this, gp);
}

void Port::transmit(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  TlpExtension& ext = tlp_of(gp);
  if (!link_up()) {
    ext.status = CplStatus::kUR;
    return;
  }
  const Time now = now_fs();
  const Time ready = now + delay.value();
  const TlpKind kind = ext.kind;
  const bool addr64 = is_memory(kind) && gp.get_address() > 0xffffffffULL;
  const bool carries_data = kind == TlpKind::MWr || kind == TlpKind::CfgWr0 ||
                            kind == TlpKind::CfgWr1 || kind == TlpKind::Msg;
  const std::uint32_t payload = carries_data ? gp.get_data_length() : 0;

  LinkDirection& out = link_->direction(egress());
  const FcClass cls = fc_class(kind);
  const std::uint32_t data_credits = data_credits_for(payload);
  CreditPool& pool = out.credits(cls);
  Time t = pool.acquire(1, data_credits, ready, &out.stats().fc[static_cast<unsigned>(cls)]);
  Time end = 0;
  // Header-only and small requests (config, MMIO, doorbells, MSI, read
  // requests) are arbitrated ahead of queued completions, as PCIe ordering
  // permits; bulk writes queue behind them (docs/timing.md, "Arbitration").
  const bool pass_completions = payload <= kSmallRequestBytes;
  const Time start = out.occupy(t, out.timing().wire_bytes(kind, payload, addr64), payload, 1, &end,
                                pass_completions);
  const Time arrival = end + link_->propagation();
  if (ext.first_hop_done == 0) ext.first_hop_done = end;
  ++ext.hops;
  ext.consumed_at = arrival;

  sc_core::sc_time d = to_sc(arrival - now);
  tx->b_transport(gp, d);

  // The receiver freed the buffer at consumed_at; the credit is back once
  // its UpdateFC DLLP crossed the link.
  const Time consumed = std::max(ext.consumed_at, arrival);
  pool.commit(
      1, data_credits,
      consumed + link_->fc_update_latency() + out.timing().dllp_time() + link_->propagation());

  Time done = now + d.value();
  if (!is_posted(kind) && ext.status != CplStatus::kDiscarded &&
      ext.status != CplStatus::kTimeout) {
    // The completion(s) travel back on the reverse direction, pipelined
    // TLP by TLP behind the first one.
    LinkDirection& back = link_->direction(reverse(egress()));
    const bool with_data = is_read(kind) && ext.status == CplStatus::kSC;
    const std::uint32_t len = with_data ? gp.get_data_length() : 0;
    const unsigned n = with_data ? completion_count(gp.get_address(), len, ext.cpl_chunk) : 1;
    const std::uint32_t per_tlp = tlp_header_bytes(TlpKind::CplD, false) +
                                  tlp_framing_bytes(back.timing().speed().generation) +
                                  (back.timing().speed().ecrc ? 4u : 0u);
    const std::uint32_t wire = n * per_tlp + ((len + 3u) & ~3u);
    const std::uint32_t chunk = ext.cpl_chunk ? ext.cpl_chunk : 64u;
    const std::uint32_t first_len =
        n > 1 ? static_cast<std::uint32_t>(chunk - gp.get_address() % chunk) : len;
    const std::uint32_t last_len = n > 1 ? len - first_len - (n - 2) * chunk : len;
    const Time first_ready = ext.cpl_first && ext.cpl_first < done ? ext.cpl_first : done;
    Time cend = 0;
    const Time cstart = back.occupy_burst(first_ready, done, wire,
                                          per_tlp + ((last_len + 3u) & ~3u), len, n, &cend);
    ext.cpl_first = cstart + back.timing().serialization(per_tlp + ((first_len + 3u) & ~3u)) +
                    link_->propagation();
    done = cend + link_->propagation();
  }
  if (TraceSink* sink = trace_sink())
    sink->tlp({ready, arrival, done, &link_->name(), to_string(egress()), kind, ext.requester,
               gp.get_address(), gp.get_data_length(), ext.status, ext.p2p});
  // For the hop before us: the TLP left our receive buffer when it started
  // on this link.
  ext.consumed_at = start;
  delay = to_sc(done - now);
}

unsigned Port::transmit_dbg(tlm::tlm_generic_payload& gp) {
  if (!link_up()) return 0;
  return tx->transport_dbg(gp);
}

}  // namespace pciesim::fabric

namespace pciesim::fabric {

void Port::signal_hot_reset() {
  if (!connected() || !upstream_end_) return;
  peer_->owner_.port_hot_reset(*peer_);
}

void Port::set_link_up(bool up) {
  if (!connected() || link_->is_up() == up) return;
  link_->set_up(up);
  owner_.port_link_state(*this, up);
  peer_->owner_.port_link_state(*peer_, up);
}

}  // namespace pciesim::fabric
