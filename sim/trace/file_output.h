// What every trace file has: the file, the first write error, the size
// cap and the message when it is hit.
#pragma once

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "fabric/common/error.h"
#include "sim/trace/trace_output.h"

namespace pciesim::sim::trace {

class FileOutput : public TraceOutput {
 public:
  FileOutput(const std::string& path, const char* what, std::uint64_t max_bytes,
             std::ios::openmode mode = std::ios::out)
      : path_(path), what_(what), max_bytes_(max_bytes), out_(path, mode) {
    if (!out_)
      throw pciesim::UsageError("trace", std::string("cannot write the ") + what + " file '" +
                                             path + "': " + std::strerror(errno));
  }
  const std::string& error() const override { return error_; }
  const std::string& path() const override { return path_; }
  const std::string& truncated() const override { return truncated_; }

 protected:
  // Writes unless the cap is reached; false once it is (or on an error).
  bool put(const char* data, std::size_t n, Time t) {
    if (!reserve(n, t)) return false;
    out_.write(data, static_cast<std::streamsize>(n));
    check();
    return error_.empty();
  }
  // Counts `n` bytes against the cap (for output the caller buffers);
  // false once the cap is reached (or on an error).
  bool reserve(std::size_t n, Time t) {
    if (!error_.empty() || !truncated_.empty()) return false;
    if (max_bytes_ && bytes_ + n > max_bytes_) {
      truncated_ = std::string("the ") + what_ + " '" + path_ + "' reached its size cap of " +
                   std::to_string(max_bytes_) + " bytes at " + fabric::format_time(t) +
                   "; later records were dropped (raise the cap or narrow the trace with a "
                   "time window, components or TLP kinds)";
      return false;
    }
    bytes_ += n;
    return true;
  }
  void fail(const std::string& message) {
    if (error_.empty()) error_ = message;
  }
  bool put(const std::string& s, Time t) { return put(s.data(), s.size(), t); }
  // Writes past the cap (closing records that keep the file valid).
  void put_always(const std::string& s) { put_always(s.data(), s.size()); }
  void put_always(const char* data, std::size_t n) {
    if (!error_.empty()) return;
    out_.write(data, static_cast<std::streamsize>(n));
    bytes_ += n;  // counts toward the cap (what closes a capped file goes past it)
    check();
  }
  std::string close() {
    if (out_.is_open()) {
      out_.flush();
      check();
      out_.close();
    }
    return error_;
  }
  bool capped() const { return !truncated_.empty(); }
  std::uint64_t bytes() const { return bytes_; }

 private:
  void check() {
    if (out_.fail() && error_.empty())
      error_ = std::string("writing the ") + what_ + " file '" + path_ +
               "' failed: " + std::strerror(errno);
  }
  std::string path_;
  const char* what_;
  std::uint64_t max_bytes_;
  std::ofstream out_;
  std::string error_;
  std::string truncated_;
  std::uint64_t bytes_ = 0;
};

}  // namespace pciesim::sim::trace
