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

MigrationError::MigrationError(std::string where, std::string message, int code, std::string state,
                               std::string reason)
    : Error(std::move(where),
            errno_name_of(code) + ": " + message + " (device state " + state + ")"),
      code_(code < 0 ? code : -code),
      state_(std::move(state)),
      reason_(std::move(reason)) {}

std::string MigrationError::errno_name_of(int code) {
  switch (code < 0 ? -code : code) {
    case 2:
      return "ENOENT";
    case 5:
      return "EIO";
    case 12:
      return "ENOMEM";
    case 16:
      return "EBUSY";
    case 19:
      return "ENODEV";
    case 22:
      return "EINVAL";
    case 25:
      return "ENOTTY";
    case 28:
      return "ENOSPC";
    case 42:
      return "ENOMSG";
    case 71:
      return "EPROTO";
    case 74:
      return "EBADMSG";
    case 95:
      return "EOPNOTSUPP";
    case 107:
      return "ENOTCONN";
    case 110:
      return "ETIMEDOUT";
    default:
      return "E" + std::to_string(code < 0 ? -code : code);
  }
}

}  // namespace pciesim
