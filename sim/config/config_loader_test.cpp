// One negative test per class of config error: each must be a ConfigError
// naming the file, line and column (or the --set key) and what was expected.
#include "sim/config/config_loader.h"

#include <gtest/gtest.h>

#include "sim/config/yaml_reader.h"

namespace pciesim::sim {
namespace {

const char* kGood = R"(
root_complex: {root_ports: 2}
switches:
  - name: sw0
    downstream_ports: 2
endpoints:
  - name: ep0
links:
  - {upstream: rc.rp0, downstream: sw0}
  - {upstream: sw0.dsp0, downstream: ep0}
)";

ConfigError error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    load_config_text(text, "test.yaml", overrides);
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text;
  return ConfigError("", 0, 0, "", "");
}

void expect_error(const std::string& text, int line, int col, const std::string& fragment,
                  const std::vector<std::string>& overrides = {}) {
  ConfigError e = error_of(text, overrides);
  EXPECT_EQ(e.line(), line) << e.what();
  EXPECT_EQ(e.column(), col) << e.what();
  EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  if (line > 0) {
    EXPECT_NE(
        std::string(e.what()).find("test.yaml:" + std::to_string(line) + ":" + std::to_string(col)),
        std::string::npos)
        << e.what();
  }
}

TEST(ConfigLoader, GoodConfigLoads) {
  SystemConfig c = load_config_text(kGood, "test.yaml");
  EXPECT_EQ(c.switches.size(), 1u);
  EXPECT_EQ(c.links.size(), 2u);
  EXPECT_EQ(c.links[1].config.speed.generation, 3);  // default
  EXPECT_TRUE(c.function_exists("ep0.pf"));
  EXPECT_TRUE(c.function_exists("sw0.dsp1"));
  EXPECT_FALSE(c.function_exists("sw0.dsp2"));
  EXPECT_FALSE(c.function_exists("ep0.vf1"));  // no SR-IOV
}

TEST(ConfigLoader, YamlSyntaxError) {
  expect_error("links:\n  - {upstream: rc.rp0, downstream: [\n", 3, 1, "YAML syntax");
}

TEST(ConfigLoader, UnknownKey) {
  expect_error("simulation:\n  seed: 1\n  quantumm: 1us\n", 3, 3, "unknown key 'quantumm'");
}

TEST(ConfigLoader, WrongType) {
  expect_error("simulation:\n  quantum: fast\n", 2, 12, "expected a time with a unit");
  expect_error("host:\n  extended_tags: maybe\n", 2, 18, "expected true or false");
}

TEST(ConfigLoader, ValueOutOfRange) {
  std::string t = kGood;
  t += "  - {upstream: rc.rp1, downstream: ep1, gen: 7}\n";
  t.replace(t.find("  - name: ep0"), 13, "  - name: ep0\n  - name: ep1");
  expect_error(t, 12, 46, "expected an integer in 1..6, got 7");
}

TEST(ConfigLoader, BadLinkWidth) {
  std::string t = kGood;
  t.replace(t.find("downstream: ep0}"), 16, "downstream: ep0, width: 3}");
  expect_error(t, 10, 50, "link width");
}

TEST(ConfigLoader, MissingRequiredKey) {
  expect_error("endpoints:\n  - device_id: 0x10\n", 2, 5, "missing required key 'name'");
}

TEST(ConfigLoader, BadChoice) {
  expect_error("root_complex:\n  p2p: sometimes\n", 2, 8, "expected one of forward | block");
}

TEST(ConfigLoader, DuplicateName) {
  std::string t = kGood;
  t.replace(t.find("  - name: ep0"), 13, "  - name: sw0");
  expect_error(t, 7, 11, "duplicate name 'sw0'");
}

TEST(ConfigLoader, LinkToUnknownNode) {
  std::string t = kGood;
  t.replace(t.find("downstream: ep0"), 15, "downstream: ep9");
  expect_error(t, 10, 5, "'ep9' is not a node");
}

TEST(ConfigLoader, PortOutOfRange) {
  std::string t = kGood;
  t.replace(t.find("sw0.dsp0"), 8, "sw0.dsp7");
  expect_error(t, 10, 5, "port 7 does not exist");
}

TEST(ConfigLoader, NotAPortName) {
  std::string t = kGood;
  t.replace(t.find("sw0.dsp0"), 8, "sw0.usp0");
  expect_error(t, 10, 16, "not a port of 'sw0'");
}

TEST(ConfigLoader, SecondUpstreamLink) {
  std::string t = kGood;
  t += "  - {upstream: sw0.dsp1, downstream: ep0}\n";
  expect_error(t, 11, 5, "already has an upstream link");
}

TEST(ConfigLoader, UnconnectedNode) {
  std::string t = kGood;
  t.replace(t.find("  - name: ep0"), 13, "  - name: ep0\n  - name: lonely");
  expect_error(t, 8, 11, "not connected to the root complex");
}

TEST(ConfigLoader, BusNumbersExhausted) {
  std::string t = kGood;
  t.replace(t.find("  - name: ep0"), 13,
            "  - name: ep0\n    sriov: {total_vfs: 8192, vf_stride: 8, vf_stride_no_ari: 8}");
  ConfigError e = error_of(t);
  EXPECT_NE(std::string(e.what()).find("bus numbers"), std::string::npos) << e.what();
}

TEST(ConfigLoader, UnknownWorkloadFunction) {
  std::string t = kGood;
  t += "workloads:\n  - {name: w, function: ep0.vf1}\n";
  expect_error(t, 12, 25, "no DMA function named 'ep0.vf1'");
}

TEST(ConfigLoader, DeviceBufferTooSmall) {
  std::string t = kGood;
  t += "workloads:\n  - {name: w, function: ep0.pf, size: 1MiB, queue_depth: 2, dst: device}\n";
  expect_error(t, 12, 66, "does not fit the function's device memory");
}

TEST(ConfigLoader, UnknownScenarioTarget) {
  std::string t = kGood;
  t += "scenario:\n  - {action: config_read, target: ep7.pf, offset: 0}\n";
  expect_error(t, 12, 35, "no function named 'ep7.pf'");
}

TEST(ConfigLoader, MissingComparison) {
  std::string t = kGood;
  t += "expect:\n  - stat: workloads.w.bytes\n";
  expect_error(t, 12, 5, "missing a comparison");
}

TEST(ConfigLoader, SetOverrides) {
  SystemConfig c = load_config_text(
      kGood, "test.yaml",
      {"simulation.quantum=0ns", "links[1].gen=4", "endpoints.ep0.sriov.total_vfs=4"});
  EXPECT_EQ(c.simulation.quantum, 0u);
  EXPECT_EQ(c.links[1].config.speed.generation, 4);
  EXPECT_EQ(c.endpoints[0].params.total_vfs, 4u);
  ConfigError bad = error_of(kGood, {"links[9].gen=4"});
  EXPECT_EQ(bad.file(), "--set links[9].gen=4");
  EXPECT_NE(std::string(bad.what()).find("beyond the list"), std::string::npos);
  ConfigError typo = error_of(kGood, {"simulation.qunatum=0ns"});
  EXPECT_NE(std::string(typo.what()).find("unknown key 'qunatum'"), std::string::npos);
  ConfigError noeq = error_of(kGood, {"simulation.quantum"});
  EXPECT_NE(std::string(noeq.what()).find("key=value"), std::string::npos);
}

TEST(ConfigLoader, OverrideErrorsNameTheOverride) {
  // A bad value set by --set has no file position: blame the override.
  ConfigError gen = error_of(kGood, {"links[1].gen=9"});
  EXPECT_EQ(gen.file(), "--set links[1].gen=9") << gen.what();
  EXPECT_EQ(gen.line(), 0);
  EXPECT_NE(std::string(gen.what()).find("1..6"), std::string::npos) << gen.what();
  // By item name: the error names the canonical path and the override.
  ConfigError named = error_of(kGood, {"endpoints.ep0.msix_vectors=0"});
  EXPECT_EQ(named.file(), "--set endpoints.ep0.msix_vectors=0") << named.what();
  EXPECT_EQ(named.path(), "endpoints[0].msix_vectors");
  // An index too large for any integer type is a config error, not a crash.
  ConfigError huge = error_of(kGood, {"links[99999999999999999999999].gen=1"});
  EXPECT_NE(std::string(huge.what()).find("beyond the list"), std::string::npos) << huge.what();
  // Errors in the file itself still point into the file.
  expect_error(std::string(kGood) + "simulation: {quantum: 7}\n", 11, 23, "time",
               {"links[1].gen=3"});
}

TEST(ConfigLoader, DuplicateKeysNameBothPlaces) {
  ConfigError e = error_of("simulation:\n  quantum: 0ns\n  max_time: 1ms\n  quantum: 1ns\n");
  EXPECT_EQ(e.line(), 4);
  EXPECT_EQ(e.column(), 3);
  EXPECT_NE(std::string(e.what()).find("duplicate key 'quantum' (first at line 2, column 3)"),
            std::string::npos)
      << e.what();
  ConfigError top = error_of(std::string(kGood) + "links: []\n");
  EXPECT_NE(std::string(top.what()).find("duplicate key 'links'"), std::string::npos);
}

TEST(ConfigLoader, EmptyAndDeepDocumentsAreRefused) {
  for (const char* text : {"", "# only a comment\n", "{}\n", "~\n"}) {
    ConfigError e = error_of(text);
    EXPECT_NE(std::string(e.what()).find("the config is empty"), std::string::npos) << e.what();
  }
  std::string deep = "a: " + std::string(200, '[') + std::string(200, ']') + "\n";
  ConfigError e = error_of(deep);
  EXPECT_NE(std::string(e.what()).find("nested deeper than 64"), std::string::npos) << e.what();
  std::string huge(kMaxConfigBytes + 1, ' ');
  ConfigError big = error_of(huge);
  EXPECT_NE(std::string(big.what()).find("at most"), std::string::npos) << big.what();
}

TEST(ConfigLoader, OnlyRegularFilesAreRead) {
  for (const char* path : {"/tmp", "/dev/null", "/dev/zero", "/nonexistent/x.yaml"}) {
    try {
      load_config_file(path);
      ADD_FAILURE() << path << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.file(), path);
    }
  }
}

TEST(ConfigLoader, WorkloadAllocationsAreBoundedAtValidation) {
  const std::string w =
      std::string(kGood) + "workloads:\n  - {name: w, function: ep0.pf, size: 4KiB, count: 8}\n";
  EXPECT_NO_THROW(load_config_text(w, "test.yaml"));
  // A billion jobs costs nothing up front; more than the cookies carry is refused.
  EXPECT_NO_THROW(load_config_text(w, "test.yaml", {"workloads[0].count=1000000000"}));
  ConfigError many = error_of(w, {"workloads[0].count=4294967296"});
  EXPECT_NE(std::string(many.what()).find("1..4294967295"), std::string::npos) << many.what();
  // 4 GiB jobs, 16 deep, both sides in host memory: 128 GiB of buffers.
  ConfigError big = error_of(w, {"workloads[0].size=4294967295", "workloads[0].queue_depth=16"});
  EXPECT_EQ(big.path(), "workloads[0].size");
  EXPECT_NE(std::string(big.what()).find("of host DRAM, which has 16GiB"), std::string::npos)
      << big.what();
}

TEST(ConfigLoader, OverlappingAddressWindowsAreRefused) {
  ConfigError ecam = error_of(kGood, {"root_complex.ecam_base=0"});
  EXPECT_EQ(ecam.path(), "root_complex.ecam_base");
  EXPECT_NE(
      std::string(ecam.what()).find("the ECAM window [0x0, 0x10000000) overlaps host.memory[0]"),
      std::string::npos)
      << ecam.what();
  // The range the config sets is blamed, not the default it runs into.
  ConfigError dram = error_of(std::string(kGood) + "host:\n  memory: [{base: 0, size: 4GiB}]\n");
  EXPECT_EQ(dram.path(), "host.memory[0]");
  EXPECT_NE(std::string(dram.what()).find("overlaps host.memory[0]"), std::string::npos);
  ConfigError msi =
      error_of(kGood, {"root_complex.mmio32_base=0xfe000000", "root_complex.mmio32_size=16MiB"});
  EXPECT_NE(std::string(msi.what()).find("overlaps the MSI window"), std::string::npos)
      << msi.what();
}

TEST(ConfigLoader, CreditsMustCarryAMaxPayloadTlp) {
  ConfigError e = error_of(kGood, {"links[0].upstream_credits.posted_data=2"});
  EXPECT_EQ(e.path(), "links[0].upstream_credits.posted_data");
  EXPECT_NE(std::string(e.what()).find("at least 16"), std::string::npos) << e.what();
  // The switch's upstream port supports 512-byte payloads.
  ConfigError sw = error_of(kGood, {"links[0].downstream_credits.completion_data=16"});
  EXPECT_NE(std::string(sw.what()).find("at least 32"), std::string::npos) << sw.what();
  EXPECT_NO_THROW(load_config_text(
      kGood, "test.yaml",
      {"links[0].upstream_credits.posted_data=0", "links[0].upstream_credits.posted_data=16"}));
}

TEST(ConfigLoader, ReferenceDocumentsEveryKey) {
  std::string md = config_reference_markdown();
  for (const char* key : {"`quantum`", "`total_vfs`", "`traversal_latency`", "`posted_header`",
                          "`queue_depth`", "`completion_split`", "`action`", "`approx`"})
    EXPECT_NE(md.find(key), std::string::npos) << key;
}

}  // namespace
}  // namespace pciesim::sim
