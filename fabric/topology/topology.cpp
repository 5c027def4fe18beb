#include "fabric/topology/topology.h"

#include <boost/graph/depth_first_search.hpp>
#include <set>

namespace pciesim::fabric {

const char* to_string(NodeKind k) {
  switch (k) {
    case NodeKind::kRootComplex:
      return "root complex";
    case NodeKind::kSwitch:
      return "switch";
    case NodeKind::kEndpoint:
      return "endpoint";
  }
  return "?";
}

void Topology::add_node(const TopoNode& node) {
  pending_nodes_.push_back(node);
  if (by_name_.count(node.name)) {
    duplicate_names_.push_back(node.name);
    return;
  }
  Vertex v = boost::add_vertex(VertexProps{node}, g_);
  by_name_[node.name] = v;
}

void Topology::add_link(const TopoLink& link) {
  links_.push_back(link);
}

namespace {
struct CycleFinder : boost::default_dfs_visitor {
  bool* found;
  explicit CycleFinder(bool* f) : found(f) {}
  template <class E, class G>
  void back_edge(E, const G&) {
    *found = true;
  }
};
}  // namespace

void Topology::validate() const {
  for (const std::string& name : duplicate_names_)
    throw TopologyError(name, "duplicate name '" + name + "': every node needs a unique name");
  std::vector<std::string> roots;
  for (const TopoNode& n : pending_nodes_) {
    if (n.name.empty()) throw TopologyError("<unnamed>", "a node has an empty name");
    if (n.kind == NodeKind::kRootComplex) roots.push_back(n.name);
  }
  if (roots.empty()) throw TopologyError("root_complex", "the system has no root complex");
  if (roots.size() > 1)
    throw TopologyError(roots[1],
                        "a second root complex '" + roots[1] + "': a system has exactly one");

  // Links: ends exist, ports in range and used once, one upstream link each.
  Graph g = g_;
  std::set<std::pair<std::string, unsigned>> used_ports;
  std::map<std::string, std::string> upstream_of;
  for (const TopoLink& l : links_) {
    auto up = by_name_.find(l.upper);
    if (up == by_name_.end())
      throw TopologyError(l.name, "upstream end '" + l.upper + "' is not a node of the system");
    auto lo = by_name_.find(l.lower);
    if (lo == by_name_.end())
      throw TopologyError(l.name, "downstream end '" + l.lower + "' is not a node of the system");
    const TopoNode& un = g_[up->second].node;
    const TopoNode& ln = g_[lo->second].node;
    if (un.kind == NodeKind::kEndpoint)
      throw TopologyError(l.name, "upstream end '" + l.upper +
                                      "' is an endpoint; links hang below root ports or switch "
                                      "downstream ports");
    if (l.upper_port >= un.downstream_ports)
      throw TopologyError(l.name, "'" + l.upper + "' has " + std::to_string(un.downstream_ports) +
                                      " downstream ports; port " + std::to_string(l.upper_port) +
                                      " does not exist");
    if (ln.kind == NodeKind::kRootComplex)
      throw TopologyError(
          l.name, "the root complex '" + l.lower + "' cannot be the downstream end of a link");
    if (!used_ports.insert({l.upper, l.upper_port}).second)
      throw TopologyError(l.name, "port " + std::to_string(l.upper_port) + " of '" + l.upper +
                                      "' already carries a link");
    if (upstream_of.count(l.lower))
      throw TopologyError(l.name, "'" + l.lower + "' already has an upstream link (" +
                                      upstream_of[l.lower] + "); a PCIe hierarchy is a tree");
    upstream_of[l.lower] = l.name;
    if (l.upper == l.lower) throw TopologyError(l.name, "link from '" + l.upper + "' to itself");
    boost::add_edge(up->second, lo->second, EdgeProps{l}, g);
  }

  bool cycle = false;
  CycleFinder finder(&cycle);
  boost::depth_first_search(g, boost::visitor(finder));
  if (cycle) throw TopologyError("links", "the links form a cycle; a PCIe hierarchy is a tree");

  // Reachability from the root complex.
  Vertex root = by_name_.at(roots[0]);
  std::vector<boost::default_color_type> colors(boost::num_vertices(g));
  auto color_map =
      boost::make_iterator_property_map(colors.begin(), boost::get(boost::vertex_index, g));
  boost::depth_first_visit(g, root, boost::default_dfs_visitor(), color_map);
  for (const TopoNode& n : pending_nodes_) {
    Vertex v = by_name_.at(n.name);
    if (colors[v] == boost::white_color)
      throw TopologyError(n.name, "'" + n.name +
                                      "' is not connected to the root complex (no link leads "
                                      "to it)");
  }

  unsigned buses = 0;
  {
    // Computed on the validated graph (a copy of this with the links).
    Topology copy = *this;
    copy.g_ = g;
    buses = copy.buses_required();
  }
  if (buses > 256)
    throw TopologyError("links", "the hierarchy needs " + std::to_string(buses) +
                                     " bus numbers but only 256 (0-255) exist");
}

unsigned Topology::buses_required() const {
  // Bus 0 is the root complex's; every bridge (root port, switch upstream
  // port with its internal bus, each switch downstream port) takes one more,
  // and endpoints may need extra buses for VFs.
  unsigned buses = 1;
  for (auto [vi, ve] = boost::vertices(g_); vi != ve; ++vi) {
    const TopoNode& n = g_[*vi].node;
    switch (n.kind) {
      case NodeKind::kRootComplex:
        buses += n.downstream_ports;
        break;
      case NodeKind::kSwitch:
        buses += 1 + n.downstream_ports;
        break;
      case NodeKind::kEndpoint:
        buses += n.extra_buses;
        break;
    }
  }
  return buses;
}

const TopoNode& Topology::node(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) throw TopologyError(name, "no node named '" + name + "'");
  return g_[it->second].node;
}

bool Topology::has_node(const std::string& name) const {
  return by_name_.count(name) > 0;
}

std::map<unsigned, std::string> Topology::children(const std::string& name) const {
  std::map<unsigned, std::string> out;
  for (const TopoLink& l : links_)
    if (l.upper == name) out[l.upper_port] = l.lower;
  return out;
}

std::string Topology::root_name() const {
  for (const TopoNode& n : pending_nodes_)
    if (n.kind == NodeKind::kRootComplex) return n.name;
  return {};
}

const TopoLink* Topology::upstream_link(const std::string& name) const {
  for (const TopoLink& l : links_)
    if (l.lower == name) return &l;
  return nullptr;
}

std::vector<std::string> Topology::depth_first_order() const {
  std::vector<std::string> order;
  std::vector<std::string> stack{root_name()};
  std::set<std::string> seen;
  while (!stack.empty()) {
    std::string n = stack.back();
    stack.pop_back();
    if (n.empty() || !seen.insert(n).second) continue;
    order.push_back(n);
    auto kids = children(n);
    for (auto it = kids.rbegin(); it != kids.rend(); ++it)
      stack.push_back(it->second);
  }
  return order;
}

}  // namespace pciesim::fabric
