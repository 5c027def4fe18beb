// The input language of Linux's aer-inject tool (git.kernel.org
// .../gong.chen/aer-inject, file SPEC), accepted as an alternative way to
// describe `aer_report` faults (docs/faults.md "aer-inject files").
//
//   AER                          starts a record (one per injected error)
//   PCI_ID [WWWW:]XX:YY.Z        the function, lspci style, hexadecimal
//   BUS n  DEV n  FN n           or its parts (numbers in C notation)
//   DOMAIN n                     segment (only 0 exists)
//   COR_STATUS name|number       correctable error(s); repeatable (ORed)
//   UNCOR_STATUS name|number     uncorrectable error(s); repeatable
//   HEADER_LOG n n n n           the 4 DW header logged with it
//
// Keywords are case-insensitive and may share a line; `#` starts a comment.
// Aliases as in aer-inject: ID, COR / CORRECTABLE, UNCOR / UNCORRECTABLE,
// HL. Status names are the tool's (RCVR, BAD_TLP, ..., UNSUP) plus the
// later PCI_ERR_* names (SURPDN, ACSV, INTN, ...).
//
// The tool itself makes the kernel's AER driver *believe* a device logged
// an error (it fakes config reads); pciesim instead sets the bits in the
// modelled function's AER registers and sends the error message it calls
// for, so masks, severities, reporting enables, DPC and the root port's
// logging all take part. Nothing happens to any TLP.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace pciesim::fabric {

struct AerInjectRecord {
  std::string where;  // "file:line" of its AER keyword
  unsigned domain = 0, bus = 0, device = 0, function = 0;
  bool has_id = false;
  std::uint32_t cor_status = 0;
  std::uint32_t uncor_status = 0;
  std::array<std::uint32_t, 4> header_log{0, 0, 0, 0};
  std::string pci_id() const;  // "bb:dd.f"
};

// Parses `text` (named `source` in messages). Throws UsageError naming
// "source:line" and the offending word for anything it cannot read; a
// record without a device or without any error is refused as well.
std::vector<AerInjectRecord> parse_aer_inject(const std::string& text, const std::string& source);

// An AER status bit by name (aer-inject or PCI_ERR_* spelling, case
// insensitive) or number (C notation: a mask of one or more bits).
bool parse_aer_status(bool correctable, const std::string& word, std::uint32_t* bits);

// The status names of one register, for messages: "RCVR, BAD_TLP, ...".
std::string aer_status_names(bool correctable);

}  // namespace pciesim::fabric
