#include "fabric/common/error.h"

namespace pciesim {

Error::Error(std::string where, std::string message)
    : std::runtime_error(where.empty() ? message : where + ": " + message),
      where_(std::move(where)),
      message_(std::move(message)) {}

std::string ConfigError::location(const std::string& file, int line, int column,
                                  const std::string& path) {
  std::string loc = file.empty() ? std::string("<config>") : file;
  if (line > 0) {
    loc += ":" + std::to_string(line);
    if (column > 0) loc += ":" + std::to_string(column);
  }
  if (!path.empty()) loc += " (" + path + ")";
  return loc;
}

ConfigError::ConfigError(std::string file, int line, int column, std::string path,
                         std::string message)
    : Error(location(file, line, column, path), std::move(message)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      path_(std::move(path)) {}

}  // namespace pciesim
