#include "fabric/topology/topology.h"

#include <gtest/gtest.h>

namespace pciesim::fabric {
namespace {

Topology quickstart() {
  Topology t;
  t.add_node({"rc", NodeKind::kRootComplex, 2});
  t.add_node({"sw0", NodeKind::kSwitch, 4});
  t.add_node({"ep0", NodeKind::kEndpoint});
  t.add_node({"ep1", NodeKind::kEndpoint});
  t.add_link({"links[0]", "rc", 0, "sw0"});
  t.add_link({"links[1]", "sw0", 0, "ep0"});
  t.add_link({"links[2]", "sw0", 1, "ep1"});
  return t;
}

std::string error_of(const Topology& t, std::string* subject = nullptr) {
  try {
    t.validate();
  } catch (const TopologyError& e) {
    if (subject) *subject = e.subject();
    return e.message();
  }
  return "";
}

TEST(Topology, ValidTreeAndOrder) {
  Topology t = quickstart();
  EXPECT_NO_THROW(t.validate());
  EXPECT_EQ(t.root_name(), "rc");
  EXPECT_EQ((std::vector<std::string>{"rc", "sw0", "ep0", "ep1"}), t.depth_first_order());
  EXPECT_EQ(t.buses_required(), 1u + 2u + 5u);
  EXPECT_EQ(t.upstream_link("ep1")->name, "links[2]");
  EXPECT_EQ(t.children("sw0").size(), 2u);
}

TEST(Topology, DuplicateNames) {
  Topology t = quickstart();
  t.add_node({"ep0", NodeKind::kEndpoint});
  std::string subject;
  EXPECT_NE(error_of(t, &subject).find("duplicate name 'ep0'"), std::string::npos);
  EXPECT_EQ(subject, "ep0");
}

TEST(Topology, ExactlyOneRootComplex) {
  Topology none;
  none.add_node({"ep0", NodeKind::kEndpoint});
  EXPECT_NE(error_of(none).find("no root complex"), std::string::npos);
  Topology two = quickstart();
  two.add_node({"rc2", NodeKind::kRootComplex, 1});
  std::string subject;
  EXPECT_NE(error_of(two, &subject).find("exactly one"), std::string::npos);
  EXPECT_EQ(subject, "rc2");
}

TEST(Topology, LinkEndsMustExist) {
  Topology t = quickstart();
  t.add_link({"links[3]", "sw0", 2, "ep9"});
  std::string subject;
  EXPECT_NE(error_of(t, &subject).find("'ep9' is not a node"), std::string::npos);
  EXPECT_EQ(subject, "links[3]");
  Topology u = quickstart();
  u.add_link({"links[3]", "nosuch", 0, "ep0"});
  EXPECT_NE(error_of(u).find("upstream end 'nosuch'"), std::string::npos);
}

TEST(Topology, PortIndexInRangeAndUsedOnce) {
  Topology t = quickstart();
  t.add_node({"ep2", NodeKind::kEndpoint});
  t.add_link({"links[3]", "sw0", 4, "ep2"});
  EXPECT_NE(error_of(t).find("port 4 does not exist"), std::string::npos);
  Topology u = quickstart();
  u.add_node({"ep2", NodeKind::kEndpoint});
  u.add_link({"links[3]", "sw0", 1, "ep2"});
  EXPECT_NE(error_of(u).find("already carries a link"), std::string::npos);
}

TEST(Topology, OneUpstreamLinkPerNode) {
  Topology t = quickstart();
  t.add_link({"links[3]", "sw0", 2, "ep0"});
  EXPECT_NE(error_of(t).find("already has an upstream link"), std::string::npos);
}

TEST(Topology, EndpointsHaveNoDownstreamPorts) {
  Topology t = quickstart();
  t.add_node({"ep2", NodeKind::kEndpoint});
  t.add_link({"links[3]", "ep0", 0, "ep2"});
  EXPECT_NE(error_of(t).find("is an endpoint"), std::string::npos);
}

TEST(Topology, CyclesAndUnreachableNodes) {
  Topology t = quickstart();
  t.add_node({"swa", NodeKind::kSwitch, 1});
  t.add_node({"swb", NodeKind::kSwitch, 1});
  t.add_link({"links[3]", "swa", 0, "swb"});
  t.add_link({"links[4]", "swb", 0, "swa"});
  EXPECT_NE(error_of(t).find("cycle"), std::string::npos);
  Topology u = quickstart();
  u.add_node({"orphan", NodeKind::kEndpoint});
  std::string subject;
  EXPECT_NE(error_of(u, &subject).find("not connected to the root complex"), std::string::npos);
  EXPECT_EQ(subject, "orphan");
}

TEST(Topology, BusNumbersMustFit) {
  Topology t = quickstart();
  t.add_node({"big", NodeKind::kEndpoint, 0, 250});
  t.add_link({"links[3]", "sw0", 2, "big"});
  EXPECT_NE(error_of(t).find("bus numbers"), std::string::npos);
}

}  // namespace
}  // namespace pciesim::fabric
