// The VFIO migration uAPI v2 state machine (SPEC.md F; Linux
// include/uapi/linux/vfio.h and vfio_mig_get_next_state() in
// drivers/vfio/vfio_main.c). Plain C++: which states a flag set offers,
// and the single-step rule a driver follows one arc at a time towards a
// requested state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pciesim::sim::vfio {

enum class MigState : std::uint8_t {
  kError = 0,
  kStop = 1,
  kRunning = 2,
  kStopCopy = 3,
  kResuming = 4,
  kRunningP2p = 5,
  kPreCopy = 6,
  kPreCopyP2p = 7,
};
constexpr unsigned kNumStates = 8;

enum MigFlags : std::uint32_t {
  kFlagStopCopy = 1u << 0,
  kFlagP2p = 1u << 1,
  kFlagPreCopy = 1u << 2,
};

const char* state_name(MigState s);
std::optional<MigState> parse_state(const std::string& name);
// "stop_copy", "p2p", "pre_copy"
std::vector<std::string> flag_names(std::uint32_t flags);
std::optional<std::uint32_t> parse_flag(const std::string& name);

// The four defined flag sets: STOP_COPY alone or with P2P and/or PRE_COPY.
bool valid_flags(std::uint32_t flags);
// Whether a device with `flags` has state `s` (ERROR and RUNNING always).
bool supports(std::uint32_t flags, MigState s);
// In the saving group (PRE_COPY, PRE_COPY_P2P, STOP_COPY): a data stream
// for reading is open.
bool saving(MigState s);

// The next single arc from `cur` towards `target` for a device with
// `flags`, or nullopt when the request is undefined (unsupported or
// out-of-range state, ERROR requested or current, STOP_COPY -> PRE_COPY*).
// cur == target gives cur.
std::optional<MigState> next_state(std::uint32_t flags, MigState cur, MigState target);
// Every state of the multi-step transition, `cur` first; empty if undefined.
std::vector<MigState> path(std::uint32_t flags, MigState cur, MigState target);

}  // namespace pciesim::sim::vfio
