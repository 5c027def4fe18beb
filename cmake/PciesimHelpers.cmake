# pciesim_library(NAME SOURCES... DEPS ...): one CMake library per layer.
function(pciesim_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()

# pciesim_gtest(NAME SOURCES ... LIBS ...): a GoogleTest binary whose tests each
# run in their own process (gtest_discover_tests), so every test gets a fresh
# SystemC kernel. The binary's sc_main comes from regress/support/gtest_sc_main.cpp.
function(pciesim_gtest name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} pciesim_gtest_main GTest::gtest GTest::gmock)
  pciesim_warnings(${name})
  gtest_discover_tests(${name}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES ENVIRONMENT "SC_COPYRIGHT_MESSAGE=DISABLE;PCIESIM_SOURCE_DIR=${PROJECT_SOURCE_DIR};${PCIESIM_SANITIZER_ENV}"
    DISCOVERY_TIMEOUT 60)
endfunction()
