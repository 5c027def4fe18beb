// The system's shape as a graph (Boost.Graph): nodes are the root complex,
// switches and endpoint devices; edges are links from a downstream-facing
// port (root port, switch downstream port) to a device's upstream port.
// validate() checks the rules a PCIe hierarchy must satisfy and reports each
// violation as a TopologyError naming the node or link (the config loader
// maps those names back to file:line:col).
#pragma once

#include <boost/graph/adjacency_list.hpp>
#include <map>
#include <string>
#include <vector>

#include "fabric/common/error.h"

namespace pciesim::fabric {

enum class NodeKind { kRootComplex, kSwitch, kEndpoint };
const char* to_string(NodeKind k);

struct TopoNode {
  std::string name;
  NodeKind kind = NodeKind::kEndpoint;
  // Downstream-facing ports: root ports of the RC, downstream ports of a switch.
  unsigned downstream_ports = 0;
  // Bus numbers an endpoint needs beyond its own (VFs on higher buses).
  unsigned extra_buses = 0;
};

struct TopoLink {
  std::string name;   // a stable label, e.g. "links[2]"
  std::string upper;  // node name
  unsigned upper_port = 0;
  std::string lower;  // node name
};

class TopologyError : public Error {
 public:
  // `subject` is the node name or link label the problem is about.
  TopologyError(std::string subject, std::string message)
      : Error(subject, std::move(message)), subject_(std::move(subject)) {}
  const std::string& subject() const { return subject_; }

 private:
  std::string subject_;
};

class Topology {
 public:
  struct VertexProps {
    TopoNode node;
  };
  struct EdgeProps {
    TopoLink link;
  };
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, VertexProps,
                                      EdgeProps>;
  using Vertex = Graph::vertex_descriptor;

  // Adding never throws for semantic problems; validate() reports them all
  // in a fixed order (the first one is thrown).
  void add_node(const TopoNode& node);
  void add_link(const TopoLink& link);

  // Checks: unique names; exactly one root complex; every link's ends exist
  // and its upper port index is in range; no port carries two links; every
  // non-root node has exactly one upstream link and the root complex none;
  // no cycles; everything reachable from the root complex; the bus numbers
  // needed fit in 0..255.
  void validate() const;

  // Bus numbers a depth-first enumeration needs (bus 0 included).
  unsigned buses_required() const;

  const Graph& graph() const { return g_; }
  std::size_t node_count() const { return boost::num_vertices(g_); }
  const TopoNode& node(const std::string& name) const;
  bool has_node(const std::string& name) const;
  // Children of a node by upper port index; missing ports absent.
  std::map<unsigned, std::string> children(const std::string& name) const;
  std::string root_name() const;
  // The link whose lower end is `name`, or nullptr.
  const TopoLink* upstream_link(const std::string& name) const;
  // Names in depth-first order from the root, children by port index.
  std::vector<std::string> depth_first_order() const;

 private:
  Graph g_;
  std::vector<TopoNode> pending_nodes_;  // kept in insertion order for errors
  std::vector<TopoLink> links_;
  std::map<std::string, Vertex> by_name_;
  std::vector<std::string> duplicate_names_;
};

}  // namespace pciesim::fabric
