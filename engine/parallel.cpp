// Thread-count policy (see parallel.h for the decision and its reasons).
#include "engine/parallel.h"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace mriscan {

int physical_core_count() {
  // A physical core is a distinct (package, core) pair in /sys/devices/system/cpu/cpu*/topology.
  std::set<std::pair<int, int>> cores;
  const int logical = static_cast<int>(std::thread::hardware_concurrency());
  for (int cpu = 0; cpu < logical; ++cpu) {
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream package_file(dir + "physical_package_id"), core_file(dir + "core_id");
    int package = 0, core = 0;
    if (!(package_file >> package) || !(core_file >> core)) return logical > 0 ? logical : 1;
    cores.insert({package, core});
  }
  return cores.empty() ? 1 : static_cast<int>(cores.size());
}

namespace {

int default_num_threads() {
  if (std::getenv("OMP_NUM_THREADS")) return omp_get_max_threads();  // the user's explicit choice
  return physical_core_count();
}

// 0 = not chosen yet; resolved on first use so that tools can call set_num_threads() before any kernel runs.
std::atomic<int> g_num_threads{0};
thread_local int t_num_threads = 0;  // per-thread budget, 0 = none

}  // namespace

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
  g_num_threads.store(n);
}

void set_thread_num_threads(int n) {
  if (n < 0) throw std::invalid_argument("set_thread_num_threads: n must be >= 0, got " + std::to_string(n));
  t_num_threads = n;
}

int num_threads() {
  if (t_num_threads > 0) return t_num_threads;
  int n = g_num_threads.load();
  if (n == 0) {
    n = default_num_threads();
    int expected = 0;
    if (!g_num_threads.compare_exchange_strong(expected, n)) n = expected;  // another thread resolved it first
  }
  return n;
}

}  // namespace mriscan
