#include "sim/host/vfio/migration_fsm.h"

#include <array>

namespace pciesim::sim::vfio {

namespace {
using S = MigState;
constexpr S E = S::kError, ST = S::kStop, R = S::kRunning, SC = S::kStopCopy, RS = S::kResuming,
            RP = S::kRunningP2p, PC = S::kPreCopy, PP = S::kPreCopyP2p;

// First arc from [current] towards [requested] on a device with every
// feature (SPEC.md F): the shortest path over the single-step arcs that
// never passes through a saving-group state in its interior, and
// STOP_COPY -> PRE_COPY* refused. Columns in state-number order: ERROR,
// STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P.
constexpr std::array<std::array<S, kNumStates>, kNumStates> kFirstArc = {{
    /* ERROR        */ {E, E, E, E, E, E, E, E},
    /* STOP         */ {E, ST, RP, SC, RS, RP, RP, RP},
    /* RUNNING      */ {E, RP, R, RP, RP, RP, PC, RP},
    /* STOP_COPY    */ {E, ST, ST, SC, ST, ST, E, E},
    /* RESUMING     */ {E, ST, ST, ST, RS, ST, ST, ST},
    /* RUNNING_P2P  */ {E, ST, R, ST, ST, RP, R, PP},
    /* PRE_COPY     */ {E, R, R, PP, R, R, PC, PP},
    /* PRE_COPY_P2P */ {E, RP, RP, SC, RP, RP, PC, PP},
}};

// The feature flags a state needs (ERROR: none a device could lack, but
// never a valid request).
std::uint32_t needs(S s) {
  switch (s) {
    case S::kRunningP2p:
      return kFlagStopCopy | kFlagP2p;
    case S::kPreCopy:
      return kFlagStopCopy | kFlagPreCopy;
    case S::kPreCopyP2p:
      return kFlagStopCopy | kFlagP2p | kFlagPreCopy;
    default:
      return kFlagStopCopy;
  }
}

unsigned idx(S s) {
  return static_cast<unsigned>(s);
}
}  // namespace

const char* state_name(MigState s) {
  switch (s) {
    case S::kError:
      return "ERROR";
    case S::kStop:
      return "STOP";
    case S::kRunning:
      return "RUNNING";
    case S::kStopCopy:
      return "STOP_COPY";
    case S::kResuming:
      return "RESUMING";
    case S::kRunningP2p:
      return "RUNNING_P2P";
    case S::kPreCopy:
      return "PRE_COPY";
    case S::kPreCopyP2p:
      return "PRE_COPY_P2P";
  }
  return "?";
}

std::optional<MigState> parse_state(const std::string& name) {
  for (unsigned i = 0; i < kNumStates; ++i)
    if (name == state_name(static_cast<S>(i))) return static_cast<S>(i);
  return std::nullopt;
}

std::vector<std::string> flag_names(std::uint32_t flags) {
  std::vector<std::string> out;
  if (flags & kFlagStopCopy) out.push_back("stop_copy");
  if (flags & kFlagP2p) out.push_back("p2p");
  if (flags & kFlagPreCopy) out.push_back("pre_copy");
  return out;
}

std::optional<std::uint32_t> parse_flag(const std::string& name) {
  if (name == "stop_copy") return kFlagStopCopy;
  if (name == "p2p") return kFlagP2p;
  if (name == "pre_copy") return kFlagPreCopy;
  return std::nullopt;
}

bool valid_flags(std::uint32_t flags) {
  return (flags & kFlagStopCopy) && !(flags & ~(kFlagStopCopy | kFlagP2p | kFlagPreCopy));
}

bool supports(std::uint32_t flags, MigState s) {
  if (s == S::kRunning || s == S::kError) return true;
  return idx(s) < kNumStates && (flags & needs(s)) == needs(s);
}

bool saving(MigState s) {
  return s == S::kPreCopy || s == S::kPreCopyP2p || s == S::kStopCopy;
}

std::optional<MigState> next_state(std::uint32_t flags, MigState cur, MigState target) {
  if (!valid_flags(flags) || idx(cur) >= kNumStates || idx(target) >= kNumStates) return {};
  if (cur == S::kError || target == S::kError) return {};
  if (!supports(flags, cur) || !supports(flags, target)) return {};
  // Arcs touching a state the device lacks are skipped: the driver sees
  // one arc from `cur` to the next state it has (vfio_mig_get_next_state).
  S next = kFirstArc[idx(cur)][idx(target)];
  while (next != S::kError && !supports(flags, next))
    next = kFirstArc[idx(next)][idx(target)];
  if (next == S::kError) return {};
  return next;
}

std::vector<MigState> path(std::uint32_t flags, MigState cur, MigState target) {
  std::vector<MigState> out{cur};
  while (out.back() != target) {
    std::optional<MigState> n = next_state(flags, out.back(), target);
    if (!n || out.size() > kNumStates) return {};
    out.push_back(*n);
  }
  if (out.size() == 1 && !next_state(flags, cur, target)) return {};
  return out;
}

}  // namespace pciesim::sim::vfio
