// Error types shared by every layer. DESIGN.md section 10: errors are
// exceptions that name the component (or config location) and the offending
// value; nothing user-supplied may abort() the process.
#pragma once

#include <stdexcept>
#include <string>

namespace pciesim {

// Base of every pciesim error. `where` is a hierarchical component name
// ("sw0.dsp2"), a config location ("cfg.yaml:12:5") or an API entry point.
class Error : public std::runtime_error {
 public:
  Error(std::string where, std::string message);
  const std::string& where() const { return where_; }
  const std::string& message() const { return message_; }

 private:
  std::string where_;
  std::string message_;
};

// A config file, a config dict or a --set override is wrong.
class ConfigError : public Error {
 public:
  // `file` may be empty (dict input); line/column are 1-based, 0 = unknown.
  // `path` is the key path inside the document ("links[1].gen").
  ConfigError(std::string file, int line, int column, std::string path, std::string message);
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& path() const { return path_; }

 private:
  static std::string location(const std::string& file, int line, int column,
                              const std::string& path);
  std::string file_;
  int line_;
  int column_;
  std::string path_;
};

// An API call or scenario action with bad arguments (unknown BDF, access
// outside a BAR, misaligned config access...).
class UsageError : public Error {
 public:
  using Error::Error;
};

// The run was stopped from outside (Ctrl-C): what ran so far is valid and
// its stats and traces are written, marked as interrupted.
class Interrupted : public Error {
 public:
  using Error::Error;
};

// Something inside a model went wrong that is not the user's input (an
// invariant broke). Raised instead of asserting so that a host process
// (Python) survives and reports it.
class ModelError : public Error {
 public:
  using Error::Error;
};

// A VFIO migration operation failed (docs/migration.md): `code` is the
// negative errno the kernel interface would return, `state` the device
// state the operation left (RUNNING, STOP, ..., ERROR), `reason` a short
// machine-readable cause where there is one ("checksum", "truncated", ...).
class MigrationError : public Error {
 public:
  MigrationError(std::string where, std::string message, int code, std::string state,
                 std::string reason = "");
  int code() const { return code_; }
  std::string errno_name() const { return errno_name_of(code_); }
  const std::string& state() const { return state_; }
  const std::string& reason() const { return reason_; }
  // "EINVAL" for -22 (or 22); "E<n>" for values without a name here.
  static std::string errno_name_of(int code);

 private:
  int code_;
  std::string state_;
  std::string reason_;
};

}  // namespace pciesim
