# Every third-party dependency comes from a Debian 12 package (scripts/setup.sh).
find_package(PkgConfig REQUIRED)
# Debian ships SystemC with a pkg-config file only.
pkg_check_modules(SystemC REQUIRED IMPORTED_TARGET systemc)
find_package(Boost 1.74 REQUIRED)  # Boost.Graph is header-only
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
if(PCIESIM_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(PCIESIM_BUILD_PYTHON)
  set(Python_EXECUTABLE /usr/bin/python3 CACHE FILEPATH "Debian's interpreter: the only one that sees python3-* packages")
  find_package(Python 3 REQUIRED COMPONENTS Interpreter Development.Module)
  find_package(pybind11 CONFIG REQUIRED)
endif()
