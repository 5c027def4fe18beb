#include "fabric/port/port.h"

#include <algorithm>

#include "fabric/common/error.h"
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
  if (ext.trace_id == 0)
    if (TraceSink* sink = trace_sink())
      ext.trace_id = sink->new_ids(ext.burst ? static_cast<unsigned>(ext.burst->size()) : 1);
  if (ext.burst) {
    if (burst_fits(*ext.burst))
      transmit_burst(gp, ext, delay);
    else
      transmit_split(gp, ext, delay);
    return;
  }
  if (!link_up()) {
    ext.status = CplStatus::kUR;
    return;
  }
  const Time now = now_fs();
  Time ready = now + delay.value();
  const TlpKind kind = ext.kind;
  FaultRegistry* fr = fault_registry();
  if (fr && fr->any(FaultPoint::kLink)) {
    bool posted_done = false;
    Time fault_done = 0;
    if (!request_fault(*fr, gp, ext, &ready, now, &posted_done, &fault_done)) {
      delay = to_sc(std::max(fault_done, now) - now);
      return;
    }
  }
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
    if (fr && fr->any(FaultPoint::kLink)) completion_fault(*fr, gp, ext, &done, now);
    if (TraceSink* sink = trace_sink()) {
      sink->tlp({ready, start, end, arrival, done, &link_->name(), to_string(egress()), kind,
                 ext.requester, RoutingId(), ext.tag, gp.get_address(), gp.get_data_length(),
                 ext.status, ext.p2p, ext.trace_id, 0});
      trace_completions(*sink, gp, ext, cstart, cend, n, chunk, first_len, last_len, per_tlp);
    }
  } else if (TraceSink* sink = trace_sink()) {
    sink->tlp({ready, start, end, arrival, done, &link_->name(), to_string(egress()), kind,
               ext.requester, RoutingId(), ext.tag, gp.get_address(), gp.get_data_length(),
               ext.status, ext.p2p, ext.trace_id, 0});
  }
  // For the hop before us: the TLP left our receive buffer when it started
  // on this link.
  ext.consumed_at = start;
  delay = to_sc(done - now);
}

bool Port::burst_fits(const std::vector<BurstTlp>& b) const {
  // A burst goes as one when the receiver takes bursts and the receiver's
  // posted credits could hold all of it at once (so no TLP of the burst
  // waits for the credits of another: the per-TLP result is the same).
  if (!peer_ || !peer_->owner_.accepts_bursts() || !link_up()) return false;
  // With link faults armed every TLP goes on its own, so each is checked.
  if (FaultRegistry* fr = fault_registry(); fr && fr->any(FaultPoint::kLink)) return false;
  const CreditPool& pool = link_->direction(egress()).credits(FcClass::kPosted);
  std::uint64_t data = 0;
  for (const BurstTlp& t : b)
    data += data_credits_for(t.length);
  return (!pool.header_limit() || b.size() <= pool.header_limit()) &&
         (!pool.data_limit() || data <= pool.data_limit());
}

void Port::transmit_burst(tlm::tlm_generic_payload& gp, TlpExtension& ext,
                          sc_core::sc_time& delay) {
  // The same per-TLP arithmetic as a single MWr, for every TLP of the burst
  // in order; then one call carries them all to the receiver.
  std::vector<BurstTlp>& b = *ext.burst;
  const unsigned n = static_cast<unsigned>(b.size());
  if (n == 0 || n > kMaxBurstTlps) throw ModelError("port", "bad burst size " + std::to_string(n));
  const Time now = now_fs();
  const bool addr64 = gp.get_address() > 0xffffffffULL;
  LinkDirection& out = link_->direction(egress());
  CreditPool& pool = out.credits(FcClass::kPosted);
  FcStats* fc = &out.stats().fc[static_cast<unsigned>(FcClass::kPosted)];
  const Time prop = link_->propagation();
  struct Hop {
    Time ready, start, arrival;
  };
  Hop h[kMaxBurstTlps];
  // The TLPs of a burst mostly share one size: its wire size and
  // serialization time are computed once per size.
  std::uint32_t last_len = ~0u, wire = 0, credits = 0;
  Time ser = 0;
  for (unsigned k = 0; k < n; ++k) {
    const std::uint32_t len = b[k].length;
    if (len != last_len) {
      wire = out.timing().wire_bytes(TlpKind::MWr, len, addr64);
      ser = out.timing().serialization(wire);
      credits = data_credits_for(len);
      last_len = len;
    }
    const Time ready = std::max(b[k].time, now);
    const Time t = pool.acquire(1, credits, ready, fc);
    Time end;
    const Time start = out.occupy_for(ser, t, wire, len, 1, &end, len <= kSmallRequestBytes);
    h[k] = {ready, start, end + prop};
    b[k].time = b[k].consumed = b[k].done = end + prop;
  }
  if (ext.first_hop_done == 0) ext.first_hop_done = h[n - 1].arrival - prop;
  ++ext.hops;
  sc_core::sc_time d = to_sc(h[0].arrival - now);
  tx->b_transport(gp, d);
  // The receiver freed each buffer at `consumed`; the credit is back once
  // its UpdateFC DLLP crossed the link.
  const Time credit_return = link_->fc_update_latency() + out.timing().dllp_time() + prop;
  Time done = now;
  for (unsigned k = 0; k < n; ++k) {
    pool.commit(1, data_credits_for(b[k].length),
                std::max(b[k].consumed, h[k].arrival) + credit_return);
    done = std::max(done, b[k].done);
    b[k].consumed = h[k].start;  // for the hop before: left our receive buffer
  }
  if (TraceSink* sink = trace_sink())
    for (unsigned k = 0; k < n; ++k)
      sink->tlp({h[k].ready, h[k].start, h[k].arrival - prop, h[k].arrival, b[k].done,
                 &link_->name(), to_string(egress()), TlpKind::MWr, ext.requester, RoutingId(),
                 ext.tag, gp.get_address() + b[k].offset, b[k].length, ext.status, ext.p2p,
                 ext.trace_id ? ext.trace_id + k : 0, 0});
  delay = to_sc(done - now);
}

void Port::transmit_split(tlm::tlm_generic_payload& gp, TlpExtension& ext,
                          sc_core::sc_time& delay) {
  // A receiver without burst support (or no link): the TLPs one by one.
  std::vector<BurstTlp>& b = *ext.burst;
  const Time now = now_fs();
  const bool first_hop = ext.first_hop_done == 0;
  Time done = now;
  Tlp one;
  for (BurstTlp& t : b) {
    one.burst_piece(gp, ext, t);
    TlpExtension& e = one.ext();
    if (ext.trace_id) e.trace_id = ext.trace_id + static_cast<std::uint64_t>(&t - b.data());
    sc_core::sc_time d = to_sc(std::max(t.time, now) - now);
    transmit(one.gp(), d);
    t.consumed = e.consumed_at;
    t.done = now + d.value();
    t.time = t.done;
    done = std::max(done, t.done);
    if (first_hop) ext.first_hop_done = e.first_hop_done;  // the last TLP's, in the end
    if (e.status != CplStatus::kSC) ext.status = e.status;
    if (e.p2p != P2pPath::kNone) ext.p2p = e.p2p;
    if (&t == &b.back()) ext.hops = e.hops;
  }
  delay = to_sc(done - now);
}

void Port::trace_completions(TraceSink& sink, const tlm::tlm_generic_payload& gp, TlpExtension& ext,
                             Time cstart, Time cend, unsigned n, std::uint32_t chunk,
                             std::uint32_t first_len, std::uint32_t last_len,
                             std::uint32_t per_tlp) {
  // The completion TLPs as LinkDirection::occupy_burst placed them: back
  // to back from `cstart`, the last one ending at `cend` (later when it
  // was ready later). The completer's hop names them; hops further back
  // reuse its ids.
  if (ext.cpl_trace_id == 0) ext.cpl_trace_id = sink.new_ids(n);
  const LinkDirection& back = link_->direction(reverse(egress()));
  const bool with_data = is_read(ext.kind) && ext.status == CplStatus::kSC;
  const TlpKind kind = with_data ? TlpKind::CplD : TlpKind::Cpl;
  const Time prop = link_->propagation();
  Time t = cstart;
  std::uint64_t addr = gp.get_address();
  for (unsigned k = 0; k < n; ++k) {
    const std::uint32_t len = !with_data   ? 0
                              : n == 1     ? gp.get_data_length()
                              : k == 0     ? first_len
                              : k + 1 == n ? last_len
                                           : chunk;
    const Time ser = back.timing().serialization(per_tlp + ((len + 3u) & ~3u));
    Time s = t, e = t + ser;
    if (k + 1 == n && e < cend) {
      e = cend;
      s = std::max(t, cend - ser);
    }
    sink.tlp({s, s, e, e + prop, e + prop, &link_->name(), to_string(reverse(egress())), kind,
              ext.requester, ext.completer, ext.tag, addr, len, ext.status, P2pPath::kNone,
              ext.cpl_trace_id + k, ext.trace_id});
    addr += len;
    t = e;
  }
}

unsigned Port::transmit_dbg(tlm::tlm_generic_payload& gp) {
  if (!link_up()) return 0;
  return tx->transport_dbg(gp);
}

}  // namespace pciesim::fabric

namespace pciesim::fabric {

void Port::signal_hot_reset() {
  if (!connected() || !upstream_end_) return;
  if (!link_->is_up()) {
    // A link that went down by surprise (not disabled, not contained)
    // retrains through Detect when its port is reset; the component below
    // comes up reset.
    if (!surprise_) return;
    set_link_up(true);
    if (!link_->is_up()) return;
  }
  peer_->owner_.port_hot_reset(*peer_);
}

void Port::set_link_up(bool up) {
  if (!connected() || link_->is_up() == up) return;
  if (up && (removed_ || peer_->removed_)) return;  // nothing there to train with
  surprise_ = peer_->surprise_ = false;
  link_->set_up(up);
  owner_.port_link_state(*this, up);
  peer_->owner_.port_link_state(*peer_, up);
}

}  // namespace pciesim::fabric

namespace pciesim::fabric {

const std::string& Port::fault_where(LinkDir d) {
  std::string& w = where_[static_cast<unsigned>(d)];
  if (w.empty() && link_) w = link_->name() + ":" + to_string(d);
  return w;
}

Time Port::replay_timer() const {
  // REPLAY_TIMER limit (PCIe Base 3.6.2.1, tables 3-4 to 3-9): three times
  // the Ack latency limit, in symbol times of one lane.
  const LinkDirection& out = link_->direction(egress());
  const LinkSpeed& sp = out.timing().speed();
  const unsigned symbols = dllp_interval_symbols(sp.generation, sp.width, out.timing().mps());
  return 3 * symbols * out.timing().serialization(static_cast<std::uint32_t>(sp.width));
}

void Port::surprise_down(Time t, bool permanent) {
  if (!connected()) return;
  Port& upper = upstream_end_ ? *this : *peer_;
  Port& lower = upstream_end_ ? *peer_ : *this;
  if (permanent) lower.removed_ = true;
  if (!link_->is_up()) return;
  link_->set_up(false);
  upper.surprise_ = lower.surprise_ = true;
  // Surprise Down is reported by the Downstream Port above (6.2.2.2.2).
  upper.owner_.port_error(upper, ErrorKind::kSurpriseDown, {0, 0, 0, 0}, t);
  upper.owner_.port_link_state(upper, false);
  lower.owner_.port_link_state(lower, false);
}

bool Port::request_fault(FaultRegistry& fr, tlm::tlm_generic_payload& gp, TlpExtension& ext,
                         Time* ready, Time now, bool* posted_done, Time* fault_done) {
  const unsigned id =
      fr.check(FaultPoint::kLink, fault_where(egress()), &link_->name(), gp, ext, *ready);
  if (!id) return true;
  const FaultSpec& f = fr.state(id).spec;
  LinkDirection& out = link_->direction(egress());
  const bool addr64 = is_memory(ext.kind) && gp.get_address() > 0xffffffffULL;
  const bool carries_data = ext.kind == TlpKind::MWr || ext.kind == TlpKind::CfgWr0 ||
                            ext.kind == TlpKind::CfgWr1 || ext.kind == TlpKind::Msg;
  const std::uint32_t payload = carries_data ? gp.get_data_length() : 0;
  const std::uint32_t wire = out.timing().wire_bytes(ext.kind, payload, addr64);
  const Time prop = link_->propagation();
  const std::array<std::uint32_t, 4> hdr = header_log(gp, ext);
  auto on_wire = [&](Time at) {
    Time end = 0;
    out.occupy(at, wire, 0, 0, &end);
    return end;
  };
  switch (f.kind) {
    case FaultKind::kLinkDown:
      surprise_down(*ready, false);
      ext.status = CplStatus::kUR;
      *fault_done = *ready;
      fr.note(id, *ready, "link down");
      return false;
    case FaultKind::kLcrc: {
      // Each bad copy crosses the wire, the receiver NAKs it (Bad TLP), the
      // transmitter replays; REPLAY_NUM (2 bits) rolls over on the 4th
      // replay: the link retrains before replaying (3.6.2.1).
      Time t = *ready;
      for (unsigned i = 0; i < f.repeat; ++i) {
        const Time end = on_wire(t);
        peer_->owner_.port_error(*peer_, ErrorKind::kBadTlp, hdr, end + prop);
        t = end + prop + out.timing().dllp_time() + prop;  // the NAK back
        if ((i + 1) % 4 == 0) {
          owner_.port_error(*this, ErrorKind::kReplayRollover, {0, 0, 0, 0}, t);
          t += kRetrainTime;
          ++out.stats().retrains;
        }
      }
      out.stats().replays += f.repeat;
      out.stats().replay_delay += t - *ready;
      *ready = t;
      return true;
    }
    case FaultKind::kReplayTimeout: {
      // Delivered, but its Ack is lost: the replay timer expires and the
      // TLP crosses again (the receiver drops the duplicate by sequence
      // number).
      const Time end = on_wire(*ready);
      const Time expiry = end + replay_timer();
      owner_.port_error(*this, ErrorKind::kReplayTimeout, {0, 0, 0, 0}, expiry);
      on_wire(expiry);
      ++out.stats().replays;
      ++out.stats().replay_timeouts;
      // The receiver had the first copy: nothing arrives late.
      return true;
    }
    case FaultKind::kTlpLost:
    case FaultKind::kMalformed: {
      const Time arrival = on_wire(*ready) + prop;
      if (f.kind == FaultKind::kMalformed)
        peer_->owner_.port_error(*peer_, ErrorKind::kMalformedTlp, hdr, arrival);
      else if (f.report)
        peer_->owner_.port_error(*peer_, ErrorKind::kInternal, hdr, arrival);
      ++ext.hops;
      if (ext.first_hop_done == 0) ext.first_hop_done = arrival - prop;
      ext.consumed_at = *ready;
      // A posted TLP simply vanishes; a request never gets its completion.
      if (!is_posted(ext.kind)) ext.status = CplStatus::kDiscarded;
      *posted_done = true;
      *fault_done = arrival;
      return false;
    }
    case FaultKind::kEcrc:
      ext.fault_marks |= kFaultEcrc;
      if (payload && gp.get_data_ptr()) gp.get_data_ptr()[0] ^= 0x01;  // the corruption
      return true;
    case FaultKind::kPoisoned:
      ext.poisoned = true;
      return true;
    default:
      return true;
  }
}

void Port::completion_fault(FaultRegistry& fr, tlm::tlm_generic_payload& gp, TlpExtension& ext,
                            Time* done, Time now) {
  (void)now;
  const bool with_data = is_read(ext.kind) && ext.status == CplStatus::kSC;
  const TlpKind ck = with_data ? TlpKind::CplD : TlpKind::Cpl;
  const unsigned id =
      fr.check_completion(fault_where(reverse(egress())), &link_->name(), ck, gp, ext, *done);
  if (!id) return;
  const FaultSpec& f = fr.state(id).spec;
  const std::array<std::uint32_t, 4> hdr =
      completion_header(gp, ext, ck, ext.completer, gp.get_data_length());
  LinkDirection& back = link_->direction(reverse(egress()));
  const Time prop = link_->propagation();
  switch (f.kind) {
    case FaultKind::kPoisoned:
      ext.fault_marks |= kFaultCplPoisoned;
      break;
    case FaultKind::kEcrc:
      ext.fault_marks |= kFaultCplEcrc;
      if (with_data && gp.get_data_ptr()) gp.get_data_ptr()[0] ^= 0x01;
      break;
    case FaultKind::kMalformed:
      owner_.port_error(*this, ErrorKind::kMalformedTlp, hdr, *done);
      ext.fault_marks |= kFaultCplDropped;
      break;
    case FaultKind::kTlpLost:
      if (f.report) owner_.port_error(*this, ErrorKind::kInternal, hdr, *done);
      ext.fault_marks |= kFaultCplDropped;
      break;
    case FaultKind::kLcrc: {
      const std::uint32_t wire = back.timing().wire_bytes(ck, with_data ? 64 : 0, false);
      const Time before = *done;
      for (unsigned i = 0; i < f.repeat; ++i) {
        owner_.port_error(*this, ErrorKind::kBadTlp, hdr, *done);
        *done += back.timing().serialization(wire) + 2 * prop + back.timing().dllp_time();
        if ((i + 1) % 4 == 0) {
          peer_->owner_.port_error(*peer_, ErrorKind::kReplayRollover, {0, 0, 0, 0}, *done);
          *done += kRetrainTime;
          ++back.stats().retrains;
        }
      }
      back.stats().replays += f.repeat;
      back.stats().replay_delay += *done - before;
      break;
    }
    case FaultKind::kReplayTimeout:
      peer_->owner_.port_error(*peer_, ErrorKind::kReplayTimeout, {0, 0, 0, 0}, *done);
      ++back.stats().replays;
      ++back.stats().replay_timeouts;
      break;
    case FaultKind::kLinkDown:
      surprise_down(*done, false);
      ext.fault_marks |= kFaultCplDropped;
      break;
    default:
      break;
  }
}

}  // namespace pciesim::fabric
