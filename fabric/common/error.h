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

// Something inside a model went wrong that is not the user's input (an
// invariant broke). Raised instead of asserting so that a host process
// (Python) survives and reports it.
class ModelError : public Error {
 public:
  using Error::Error;
};

}  // namespace pciesim
