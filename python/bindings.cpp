// _pciesim: the pybind11 layer over the sim facade. The pure-Python package
// `pciesim` (python/pciesim) is the public API; this module stays thin.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <systemc>

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "fabric/common/error.h"
#include "fabric/common/sim_time.h"
#include "fabric/kernel/kernel_context.h"
#include "fabric/link/link_timing.h"
#include "sim/config/config_loader.h"
#include "sim/config/yaml_reader.h"
#include "sim/facade/simulation.h"
#include "sim/trace/trace_output.h"

namespace py = pybind11;
using namespace pciesim;
using namespace pciesim::sim;

// libsystemc.so's main() refers to sc_main; the module must provide it
// (with default visibility) for the library to load.
extern "C" __attribute__((visibility("default"))) int sc_main(int, char**) {
  return 0;
}

namespace {

// Python dict/list/scalars -> YAML tree with the same schema as a file.
// The depth is bounded as for files (a dict that contains itself ends here).
YAML::Node to_yaml(const py::handle& obj, const std::string& path, unsigned depth = 0) {
  if (depth > kMaxConfigDepth)
    throw ConfigError("<dict>", 0, 0, path,
                      "nested deeper than " + std::to_string(kMaxConfigDepth) +
                          " levels (does the dict contain itself?)");
  if (py::isinstance<py::dict>(obj)) {
    YAML::Node n(YAML::NodeType::Map);
    for (auto item : py::reinterpret_borrow<py::dict>(obj)) {
      if (!py::isinstance<py::str>(item.first))
        throw ConfigError(
            "<dict>", 0, 0, path,
            "keys must be strings, got " + std::string(py::str(py::type::of(item.first))));
      std::string key = item.first.cast<std::string>();
      n[key] = to_yaml(item.second, path.empty() ? key : path + "." + key, depth + 1);
    }
    return n;
  }
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    YAML::Node n(YAML::NodeType::Sequence);
    std::size_t i = 0;
    for (auto item : obj)
      n.push_back(to_yaml(item, path + "[" + std::to_string(i++) + "]", depth + 1));
    return n;
  }
  if (obj.is_none()) return YAML::Node(YAML::NodeType::Null);
  if (py::isinstance<py::bool_>(obj)) return YAML::Node(obj.cast<bool>() ? "true" : "false");
  if (py::isinstance<py::int_>(obj)) return YAML::Node(std::string(py::str(obj)));
  if (py::isinstance<py::float_>(obj)) return YAML::Node(std::string(py::repr(obj)));
  if (py::isinstance<py::str>(obj)) return YAML::Node(obj.cast<std::string>());
  throw ConfigError("<dict>", 0, 0, path,
                    "unsupported value of type " + std::string(py::str(py::type::of(obj))));
}

// The only live simulation (SystemC allows one kernel at a time).
class Session;
Session* g_live = nullptr;

// A Python callback scheduled with at()/after() runs on an OS thread of its
// own, with its own Python thread state, in lock-step with the SystemC
// process that fired it: the process starts the thread and then serves the
// host operations the callback asks for (they need the simulation thread:
// they wait in simulated time) until the callable returns. Exactly one of
// the two runs at any moment, so the run stays deterministic, and Python
// frames never live on a SystemC coroutine stack: an operation still waiting
// when run() returns just keeps the callback's thread blocked until a later
// run completes it, and close() wakes it with an error.
struct CallbackThread {
  Session* session = nullptr;
  std::mutex mutex;
  std::condition_variable cv;
  std::function<void()> job;  // posted by the Python thread, run by the process
  bool job_done = false;
  std::exception_ptr job_error;
  bool finished = false;     // the Python callable returned or raised
  bool cancelled = false;    // the session closed under the callback
  std::exception_ptr error;  // what the callable raised
  std::thread thread;
};
thread_local CallbackThread* t_callback = nullptr;

// A Python callable whose last reference may be dropped on any thread: the
// reference is released with the GIL held.
struct PyCallable {
  py::object fn;
  ~PyCallable() {
    if (fn && Py_IsInitialized()) {
      py::gil_scoped_acquire gil;
      fn = py::object();
    }
  }
};

class Session {
 public:
  explicit Session(const SystemConfig& cfg) {
    retire_live();
    sim_ = std::make_unique<Simulation>(cfg);
    g_live = this;
    // Ctrl-C while the kernel runs (the GIL released): Python's handler
    // only notes the signal; the monitor looks at it and stops the run,
    // which raises KeyboardInterrupt.
    sim_->set_monitor([](fabric::Time) {
      if (!Py_IsInitialized()) return false;
      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() == 0) return false;
      PyErr_Clear();
      return true;
    });
  }
  ~Session() {
    try {
      close();
    } catch (...) {
    }
  }
  void close() {
    if (t_callback || busy_)
      throw UsageError("close",
                       "a simulation cannot be closed inside one of its callbacks or "
                       "while it runs; close it after run() returns");
    wake_callbacks("this simulation was closed while the callback waited for it");
    if (g_live == this) g_live = nullptr;
    if (!sim_) return;
    std::unique_ptr<Simulation> s = std::move(sim_);
    s->finish_trace();  // a trace that could not be written is reported here
  }
  bool closed() const { return !sim_; }

  // Every method goes through exec(): from a callback of this simulation
  // the call is handed to the simulation thread; from another thread while
  // the simulation runs it is refused; otherwise it runs here, with the GIL
  // released when `unlock` (anything that may run the kernel).
  template <class F>
  auto exec(F&& fn, bool unlock = true) -> decltype(fn(std::declval<Simulation&>())) {
    using R = decltype(fn(std::declval<Simulation&>()));
    if (t_callback && t_callback->session == this) return delegate<R>(std::forward<F>(fn));
    if (busy_)
      throw UsageError("simulation",
                       "the simulation is running in another thread; call it from the thread "
                       "that runs it or from a callback scheduled with at()/after()");
    if (t_callback)
      throw UsageError("simulation",
                       "a callback of one simulation cannot use another (SystemC runs one kernel "
                       "at a time)");
    Simulation& s = sim();
    if (!unlock) return fn(s);
    std::exception_ptr err;
    busy_ = true;
    if constexpr (std::is_void_v<R>) {
      {
        py::gil_scoped_release release;
        try {
          fn(s);
        } catch (...) {
          err = std::current_exception();
        }
      }
      busy_ = false;
      if (err) std::rethrow_exception(err);
    } else {
      std::optional<R> result;
      {
        py::gil_scoped_release release;
        try {
          result.emplace(fn(s));
        } catch (...) {
          err = std::current_exception();
        }
      }
      busy_ = false;
      if (err) std::rethrow_exception(err);
      return std::move(*result);
    }
  }

  // Schedules a Python callable at simulated time `at`.
  void schedule(fabric::Time at, py::function fn) {
    auto callable = std::make_shared<PyCallable>();
    callable->fn = std::move(fn);
    exec([this, at, callable](Simulation& s) {
      s.schedule(at, [this, callable] { fire(callable); });
    });
  }

  static void close_live_at_exit() {
    if (g_live && !g_live->busy_) g_live->close();
  }

 private:
  Simulation& sim() {
    if (!sim_)
      throw UsageError("simulation",
                       closed_reason_.empty() ? "this simulation is closed" : closed_reason_);
    return *sim_;
  }

  // In the Python thread of a callback: run `fn` in the simulation thread
  // and wait for it with the GIL released.
  template <class R, class F>
  R delegate(F&& fn) {
    CallbackThread* cb = t_callback;
    std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> result;
    {
      py::gil_scoped_release release;
      std::unique_lock<std::mutex> lock(cb->mutex);
      if (cb->cancelled) throw UsageError("simulation", cancel_reason_);
      cb->job = [this, &fn, &result] {
        if constexpr (std::is_void_v<R>)
          fn(sim()), result.emplace(true);
        else
          result.emplace(fn(sim()));
      };
      cb->job_done = false;
      cb->job_error = nullptr;
      cb->cv.notify_all();
      cb->cv.wait(lock, [cb] { return cb->job_done || cb->cancelled; });
      if (!cb->job_done) {
        // The simulation closed while the job waited in simulated time; the
        // job's frame (on the dead kernel's stack) is never resumed.
        throw UsageError("simulation", cancel_reason_);
      }
      if (cb->job_error) std::rethrow_exception(cb->job_error);
    }
    if constexpr (!std::is_void_v<R>) return std::move(*result);
  }

  // In the simulation thread, at the callback's time.
  void fire(const std::shared_ptr<PyCallable>& callable) {
    if (PyGILState_Check())
      throw ModelError("python", "a callback fired while the GIL is held by the kernel thread");
    auto cb = std::make_shared<CallbackThread>();
    cb->session = this;
    callbacks_.push_back(cb);
    cb->thread = std::thread([cb, callable] {
      t_callback = cb.get();
      {
        py::gil_scoped_acquire gil;
        try {
          callable->fn();
        } catch (...) {
          cb->error = std::current_exception();
        }
        callable->fn = py::object();
      }
      std::lock_guard<std::mutex> lock(cb->mutex);
      cb->finished = true;
      cb->cv.notify_all();
    });
    // Serve the callback's host operations until it returns.
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(cb->mutex);
        cb->cv.wait(lock, [&] { return cb->job || cb->finished; });
        if (!cb->job) break;
        job = std::move(cb->job);
        cb->job = nullptr;
      }
      std::exception_ptr err;
      try {
        job();
      } catch (const sc_core::sc_unwind_exception&) {
        throw;
      } catch (...) {
        err = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(cb->mutex);
      cb->job_error = err;
      cb->job_done = true;
      cb->cv.notify_all();
    }
    cb->thread.join();
    callbacks_.erase(std::find(callbacks_.begin(), callbacks_.end(), cb));
    if (cb->error) std::rethrow_exception(cb->error);  // interrupts the run
  }

  // Callbacks blocked in an operation when the simulation goes away: each
  // gets `reason` as a UsageError from that operation, and its Python code
  // finishes before the kernel is destroyed.
  void wake_callbacks(const std::string& reason) {
    if (callbacks_.empty()) return;
    cancel_reason_ = reason;
    std::vector<std::shared_ptr<CallbackThread>> waiting;
    waiting.swap(callbacks_);
    py::gil_scoped_release release;
    for (auto& cb : waiting) {
      {
        std::lock_guard<std::mutex> lock(cb->mutex);
        cb->cancelled = true;
        cb->cv.notify_all();
      }
      if (cb->thread.joinable()) cb->thread.join();
    }
  }

  static void retire_live() {
    if (!g_live) return;
    if (g_live->busy_ || t_callback)
      throw UsageError("simulation",
                       "a new Simulation cannot be created while one runs (inside a "
                       "callback or from another thread); SystemC runs one kernel "
                       "at a time");
    g_live->closed_reason_ =
        "this simulation was closed because a newer Simulation was created (SystemC runs one "
        "kernel at a time); use one at a time, e.g. `with pciesim.load(...) as sim:`";
    g_live->close();
  }
  std::unique_ptr<Simulation> sim_;
  std::string closed_reason_;
  std::string cancel_reason_;
  // Set (with the GIL held) while a thread runs this simulation.
  bool busy_ = false;
  std::vector<std::shared_ptr<CallbackThread>> callbacks_;
};

py::dict check_to_dict(const CheckResult& c) {
  py::dict d;
  d["label"] = c.label;
  d["passed"] = c.passed;
  d["check"] = c.description;
  d["observed"] = c.observed;
  d["at_fs"] = c.at;
  return d;
}

}  // namespace

PYBIND11_MODULE(_pciesim, m) {
  m.doc() = "pciesim native module (use the `pciesim` package)";
  fabric::configure_systemc_process();
  // Close the live simulation while the interpreter is whole (callbacks
  // waiting in it get an error and finish).
  py::module_::import("atexit").attr("register")(
      py::cpp_function([] { Session::close_live_at_exit(); }));

  static py::exception<Error> error(m, "Error");
  static py::exception<ConfigError> config_error(m, "ConfigError", error.ptr());
  static py::exception<UsageError> usage_error(m, "UsageError", error.ptr());
  static py::exception<ModelError> model_error(m, "ModelError", error.ptr());
  static py::exception<MigrationError> migration_error(m, "MigrationError", error.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const MigrationError& e) {
      py::object inst = py::reinterpret_borrow<py::object>(migration_error.ptr())(e.what());
      inst.attr("errno") = e.errno_name();
      inst.attr("code") = e.code();
      inst.attr("state") = e.state();
      inst.attr("reason") = e.reason();
      inst.attr("where") = e.where();
      inst.attr("message") = e.message();
      PyErr_SetObject(migration_error.ptr(), inst.ptr());
    } catch (const ConfigError& e) {
      py::object inst = py::reinterpret_borrow<py::object>(config_error.ptr())(e.what());
      inst.attr("file") = e.file();
      inst.attr("line") = e.line();
      inst.attr("column") = e.column();
      inst.attr("path") = e.path();
      inst.attr("message") = e.message();
      PyErr_SetObject(config_error.ptr(), inst.ptr());
    } catch (const UsageError& e) {
      py::object inst = py::reinterpret_borrow<py::object>(usage_error.ptr())(e.what());
      inst.attr("where") = e.where();
      inst.attr("message") = e.message();
      PyErr_SetObject(usage_error.ptr(), inst.ptr());
    } catch (const Interrupted& e) {
      PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
    } catch (const ModelError& e) {
      py::object inst = py::reinterpret_borrow<py::object>(model_error.ptr())(e.what());
      inst.attr("where") = e.where();
      PyErr_SetObject(model_error.ptr(), inst.ptr());
    } catch (const Error& e) {
      PyErr_SetString(error.ptr(), e.what());
    } catch (const sc_core::sc_report& e) {
      PyErr_SetString(model_error.ptr(), e.what());
    }
  });

  m.def("parse_time", [](const std::string& s) {
    fabric::Time t;
    if (!fabric::parse_time(s, &t))
      throw UsageError("time",
                       "expected a time with a unit such as '10us', '1.5 ms', got '" + s + "'");
    return t;
  });
  m.def("format_time", &fabric::format_time);
  m.def(
      "analytic_bandwidth",
      [](int gen, int width, std::uint32_t mps, std::uint32_t mrrs, std::uint32_t cpl_chunk,
         std::uint32_t size, bool addr64) {
        if (!fabric::valid_generation(gen) || !fabric::valid_width(width))
          throw UsageError("analytic_bandwidth", "no such link: gen " + std::to_string(gen) + " x" +
                                                     std::to_string(width));
        fabric::AnalyticPoint p =
            fabric::analytic_bandwidth({gen, width, false}, mps, mrrs, cpl_chunk, size, addr64);
        return std::make_pair(p.write_gbps, p.read_gbps);
      },
      py::arg("gen"), py::arg("width"), py::arg("mps"), py::arg("mrrs"), py::arg("cpl_chunk"),
      py::arg("size"), py::arg("addr64") = false,
      "Saturated (write, read) payload Gb/s of the closed-form PCIe overhead model.");
  m.def("config_reference", &config_reference_markdown);
  m.def("validate_file",
        [](const std::string& path, std::vector<std::string> o) { load_config_file(path, o); });
  m.def("validate_dict", [](py::dict d, std::vector<std::string> o) {
    load_config_tree(to_yaml(d, ""), "<dict>", o);
  });

  py::class_<Session>(m, "Simulation")
      .def_static("from_file",
                  [](const std::string& path, std::vector<std::string> o) {
                    return std::make_unique<Session>(load_config_file(path, o));
                  })
      .def_static("from_dict",
                  [](py::dict d, std::vector<std::string> o) {
                    return std::make_unique<Session>(load_config_tree(to_yaml(d, ""), "<dict>", o));
                  })
      .def_static(
          "from_text",
          [](const std::string& text, const std::string& source, std::vector<std::string> o) {
            return std::make_unique<Session>(load_config_text(text, source, o));
          })
      .def("close", &Session::close)
      .def_property_readonly("closed", &Session::closed)
      .def("source",
           [](Session& s) {
             return s.exec([](Simulation& sim) { return sim.config().source; }, false);
           })
      .def("now",
           [](Session& s) { return s.exec([](Simulation& sim) { return sim.now(); }, false); })
      .def("booted",
           [](Session& s) { return s.exec([](Simulation& sim) { return sim.booted(); }, false); })
      .def("scenario_done",
           [](Session& s) {
             return s.exec([](Simulation& sim) { return sim.scenario_done(); }, false);
           })
      .def("boot", [](Session& s) { s.exec([](Simulation& sim) { sim.boot(); }); })
      .def("run",
           [](Session& s) {
             RunResult r = s.exec([](Simulation& sim) { return sim.run(); });
             py::dict d;
             d["completed"] = r.completed;
             d["time_limit"] = r.time_limit;
             d["passed"] = r.passed();
             py::list checks;
             for (const CheckResult& c : r.checks)
               checks.append(check_to_dict(c));
             d["checks"] = checks;
             return d;
           })
      .def("run_for",
           [](Session& s, fabric::Time d) { s.exec([d](Simulation& sim) { sim.run_for(d); }); })
      .def("run_until",
           [](Session& s, fabric::Time t) { s.exec([t](Simulation& sim) { sim.run_until(t); }); })
      .def("config_read",
           [](Session& s, const std::string& t, std::uint16_t off, unsigned size) {
             return s.exec([&](Simulation& sim) { return sim.config_read(t, off, size); });
           })
      .def("config_write",
           [](Session& s, const std::string& t, std::uint16_t off, unsigned size, std::uint32_t v) {
             s.exec([&](Simulation& sim) { sim.config_write(t, off, size, v); });
           })
      .def("mmio_read",
           [](Session& s, const std::string& t, unsigned bar, std::uint64_t off, unsigned size) {
             return s.exec([&](Simulation& sim) { return sim.mmio_read(t, bar, off, size); });
           })
      .def("mmio_write",
           [](Session& s, const std::string& t, unsigned bar, std::uint64_t off, unsigned size,
              std::uint64_t v) {
             s.exec([&](Simulation& sim) { sim.mmio_write(t, bar, off, size, v); });
           })
      .def("memory_read",
           [](Session& s, std::uint64_t a, std::size_t n) {
             std::vector<std::uint8_t> v =
                 s.exec([&](Simulation& sim) { return sim.memory_read(a, n); }, false);
             return py::bytes(reinterpret_cast<const char*>(v.data()), v.size());
           })
      .def("memory_write",
           [](Session& s, std::uint64_t a, py::bytes data) {
             std::string str = data;
             std::vector<std::uint8_t> bytes(str.begin(), str.end());
             s.exec([&](Simulation& sim) { sim.memory_write(a, bytes); }, false);
           })
      .def("start_workload",
           [](Session& s, const std::string& n) {
             s.exec([&](Simulation& sim) { sim.start_workload(n); });
           })
      .def("wait_workload",
           [](Session& s, const std::string& n) {
             s.exec([&](Simulation& sim) { sim.wait_workload(n); });
           })
      .def("enable_vfs",
           [](Session& s, const std::string& pf, unsigned n) {
             return s.exec([&](Simulation& sim) { return sim.enable_vfs(pf, n); });
           })
      .def("disable_vfs",
           [](Session& s, const std::string& pf) {
             return s.exec([&](Simulation& sim) { return sim.disable_vfs(pf); });
           })
      .def("flr",
           [](Session& s, const std::string& t, bool restore) {
             return s.exec([&](Simulation& sim) { return sim.flr(t, restore); });
           })
      .def("dma",
           [](Session& s, const std::string& t, std::uint64_t src, std::uint64_t dst,
              std::uint32_t len, bool src_local, bool dst_local, fabric::Time timeout) {
             // Python objects only once the GIL is held again.
             std::uint32_t bytes = 0;
             int st = s.exec([&](Simulation& sim) {
               return sim.dma(t, src, dst, len, src_local, dst_local, timeout, &bytes);
             });
             return py::make_tuple(st, bytes);
           })
      .def("vfio_open",
           [](Session& s, const std::string& t) {
             Simulation::VfioInfo i = s.exec([&](Simulation& sim) { return sim.vfio_open(t); });
             py::dict d;
             d["flags"] = i.flags;
             d["state"] = i.state;
             d["unavailable"] = i.unavailable;
             d["style"] = i.style;
             return d;
           })
      .def("vfio_set_state",
           [](Session& s, const std::string& t, const std::string& st) {
             return s.exec([&](Simulation& sim) { return sim.vfio_set_state(t, st); });
           })
      .def("vfio_read",
           [](Session& s, const std::string& t, std::uint64_t max) {
             std::vector<std::uint8_t> v =
                 s.exec([&](Simulation& sim) { return sim.vfio_read(t, max); });
             return py::bytes(reinterpret_cast<const char*>(v.data()), v.size());
           })
      .def("vfio_write",
           [](Session& s, const std::string& t, const py::bytes& b) {
             const std::string raw = b;
             std::vector<std::uint8_t> v(raw.begin(), raw.end());
             return s.exec([&](Simulation& sim) { return sim.vfio_write(t, v); });
           })
      .def("vfio_precopy_info",
           [](Session& s, const std::string& t) {
             auto r = s.exec([&](Simulation& sim) { return sim.vfio_precopy_info(t); });
             return py::make_tuple(r.first, r.second);
           })
      .def("vfio_data_size",
           [](Session& s, const std::string& t) {
             return s.exec([&](Simulation& sim) { return sim.vfio_data_size(t); });
           })
      .def("vfio_reset",
           [](Session& s, const std::string& t) {
             s.exec([&](Simulation& sim) { sim.vfio_reset(t); });
           })
      .def("vfio_mmio_read",
           [](Session& s, const std::string& t, unsigned bar, std::uint64_t off, unsigned size) {
             return s.exec([&](Simulation& sim) { return sim.vfio_mmio_read(t, bar, off, size); });
           })
      .def("vfio_mmio_write",
           [](Session& s, const std::string& t, unsigned bar, std::uint64_t off, unsigned size,
              std::uint64_t v) {
             s.exec([&](Simulation& sim) { sim.vfio_mmio_write(t, bar, off, size, v); });
           })
      .def("inject",
           [](Session& s, const std::string& text) {
             return s.exec([&](Simulation& sim) { return sim.inject(text); });
           })
      .def("aer_inject",
           [](Session& s, const std::string& text, const std::string& source, std::uint64_t at) {
             return s.exec([&](Simulation& sim) { return sim.aer_inject(text, source, at); });
           })
      .def("migrate_json",
           [](Session& s, const std::string& text) {
             return s.exec([&](Simulation& sim) { return sim.migrate(text).dump(); });
           })
      .def("iommu_dirty_tracking",
           [](Session& s, const std::string& d, bool enable) {
             return s.exec([&](Simulation& sim) { return sim.iommu_dirty_tracking(d, enable); });
           })
      .def("iommu_read_dirty_json",
           [](Session& s, const std::string& d, std::uint64_t iova, std::uint64_t length,
              std::uint64_t page_size, bool no_clear) {
             return s.exec([&](Simulation& sim) {
               return sim.iommu_read_dirty(d, iova, length, page_size, no_clear).dump();
             });
           })
      .def("dma_logging_start_json",
           [](Session& s, const std::string& t,
              const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges,
              std::uint64_t page_size) {
             return s.exec([&](Simulation& sim) {
               return sim.dma_logging_start(t, ranges, page_size).dump();
             });
           })
      .def("dma_logging_stop",
           [](Session& s, const std::string& t) {
             return s.exec([&](Simulation& sim) { return sim.dma_logging_stop(t); });
           })
      .def("dma_logging_report_json",
           [](Session& s, const std::string& t, std::uint64_t iova, std::uint64_t length,
              std::uint64_t page_size) {
             return s.exec([&](Simulation& sim) {
               return sim.dma_logging_report(t, iova, length, page_size).dump();
             });
           })
      .def("vm_pause",
           [](Session& s, const std::string& vm, bool pause) {
             s.exec([&](Simulation& sim) { sim.vm_pause(vm, pause); });
           })
      .def("cpu_dirty_log",
           [](Session& s, const std::string& vm, bool enable) {
             s.exec([&](Simulation& sim) { sim.cpu_dirty_log(vm, enable); });
           })
      .def("read_cpu_dirty_log_json",
           [](Session& s, const std::string& vm, bool clear) {
             return s.exec(
                 [&](Simulation& sim) { return sim.read_cpu_dirty_log(vm, clear).dump(); });
           })
      .def("fault_json",
           [](Session& s, unsigned id) {
             return s.exec([&](Simulation& sim) { return sim.fault(id).dump(); });
           })
      .def("cancel_fault",
           [](Session& s, unsigned id) { s.exec([&](Simulation& sim) { sim.cancel_fault(id); }); })
      .def("aer_json",
           [](Session& s, const std::string& t) {
             return s.exec([&](Simulation& sim) { return sim.aer(t).dump(); });
           })
      .def("migration_fault",
           [](Session& s, const std::string& ep, const std::string& cmd, const std::string& mode,
              unsigned after, unsigned count) {
             s.exec([&](Simulation& sim) { sim.migration_fault(ep, cmd, mode, after, count); });
           })
      .def("iommu_map",
           [](Session& s, const std::string& d, std::uint64_t iova, std::uint64_t hpa,
              std::uint64_t len, bool r, bool w) {
             return s.exec([&](Simulation& sim) { return sim.iommu_map(d, iova, hpa, len, r, w); });
           })
      .def("iommu_unmap",
           [](Session& s, const std::string& d, std::uint64_t iova, std::uint64_t len, bool flush) {
             return s.exec([&](Simulation& sim) { return sim.iommu_unmap(d, iova, len, flush); });
           })
      .def("iommu_flush",
           [](Session& s, const std::string& kind, const std::string& d, std::uint64_t iova,
              std::uint64_t len, const std::string& t) {
             s.exec([&](Simulation& sim) { sim.iommu_flush(kind, d, iova, len, t); });
           })
      .def("create_domain",
           [](Session& s, const std::string& name, const std::string& type) {
             s.exec([&](Simulation& sim) { sim.create_domain(name, type); });
           })
      .def("attach",
           [](Session& s, const std::string& t, const std::string& d) {
             s.exec([&](Simulation& sim) { sim.attach(t, d); });
           })
      .def("assign",
           [](Session& s, const std::string& t, const std::string& vm) {
             s.exec([&](Simulation& sim) { sim.assign(t, vm); });
           })
      .def("peer_address",
           [](Session& s, const std::string& i, const std::string& t, unsigned bar) {
             return s.exec([&](Simulation& sim) { return sim.peer_address(i, t, bar); });
           })
      .def("iommu_lookup",
           [](Session& s, const std::string& d, std::uint64_t iova) -> py::object {
             std::uint64_t hpa = 0;
             bool mapped =
                 s.exec([&](Simulation& sim) { return sim.iommu_lookup(d, iova, &hpa); }, false);
             if (!mapped) return py::none();
             return py::int_(hpa);
           })
      .def("vm_to_host",
           [](Session& s, const std::string& vm, std::uint64_t gpa, std::uint64_t len) {
             return s.exec([&](Simulation& sim) { return sim.vm_to_host(vm, gpa, len); }, false);
           })
      .def("reset_function",
           [](Session& s, const std::string& t, const std::string& m) {
             return s.exec([&](Simulation& sim) { return sim.reset_function(t, m); });
           })
      .def("hot_reset",
           [](Session& s, const std::string& t, bool restore) {
             return s.exec([&](Simulation& sim) { return sim.hot_reset(t, restore); });
           })
      .def("set_power_state",
           [](Session& s, const std::string& t, unsigned st) {
             s.exec([&](Simulation& sim) { sim.set_power_state(t, st); });
           })
      .def("set_bus_master",
           [](Session& s, const std::string& t, bool on) {
             s.exec([&](Simulation& sim) { sim.set_bus_master(t, on); });
           })
      .def("set_memory_space",
           [](Session& s, const std::string& t, bool on) {
             s.exec([&](Simulation& sim) { sim.set_memory_space(t, on); });
           })
      .def("bdf",
           [](Session& s, const std::string& t) {
             return s.exec([&](Simulation& sim) { return sim.bdf(t); }, false);
           })
      .def("functions",
           [](Session& s, bool existing) {
             return s.exec([&](Simulation& sim) { return sim.functions(existing); }, false);
           })
      .def("schedule",
           [](Session& s, fabric::Time at, py::function fn) { s.schedule(at, std::move(fn)); })
      .def("stats_json",
           [](Session& s) {
             return s.exec([](Simulation& sim) { return sim.stats().dump(); }, false);
           })
      .def("trace_to",
           [](Session& s, const std::string& path) {
             s.exec([&](Simulation& sim) { sim.trace_to(path); }, false);
           })
      .def("add_trace",
           [](Session& s, const std::string& format, const std::string& path, fabric::Time from,
              fabric::Time to, const std::vector<std::string>& components,
              const std::vector<std::string>& kinds, std::uint64_t max_bytes,
              const std::string& unit, fabric::Time counter_interval) {
             sim::trace::TraceFilter f;
             f.from = from;
             f.to = to;
             f.components = components;
             f.kinds = kinds;
             f.max_bytes = max_bytes;
             sim::trace::PerfettoOptions o;
             o.time_unit = unit;
             s.exec([&](Simulation& sim) { sim.add_trace(format, path, f, o, counter_interval); },
                    false);
           })
      .def("finish_traces",
           [](Session& s) {
             return s.exec(
                 [](Simulation& sim) {
                   sim.finish_trace(false);
                   return sim.trace_truncations();
                 },
                 false);
           })
      .def("check_expectations",
           [](Session& s) {
             py::list out;
             std::vector<CheckResult> checks =
                 s.exec([](Simulation& sim) { return sim.check_expectations(); }, false);
             for (const CheckResult& c : checks)
               out.append(check_to_dict(c));
             return out;
           })
      .def("lspci",
           [](Session& s, int verbose, int hex, bool tree, bool numeric) {
             LspciOptions o;
             o.verbose = verbose;
             o.hex = hex;
             o.tree = tree;
             o.numeric = numeric;
             return s.exec([&](Simulation& sim) { return sim.lspci(o); });
           })
      .def("topology_dot", [](Session& s) {
        return s.exec([](Simulation& sim) { return sim.topology_dot(); }, false);
      });
}
