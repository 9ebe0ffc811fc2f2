// Thread-count policy for the whole engine: OpenMP owns the threads.
//
// Decision: every parallel loop is an OpenMP `parallel for` in a fast kernel, sized by `num_threads()`. Eigen (used
// for the OOD detector's linear algebra) is built with EIGEN_DONT_PARALLELIZE (CMakeLists.txt) so it never starts a
// second team inside ours; the fast GEMMs (kernels/gemm_packed.cpp, gemm_reduce.cpp) split their work themselves.
// One owner means no oversubscription and one knob to turn.
//
// Default: the number of PHYSICAL cores (SMT siblings share the FMA units and the memory bandwidth these kernels
// are bound by, so they add scheduling noise, not speed). OMP_NUM_THREADS, when set, wins over the default;
// set_num_threads() wins over both. Kernels pass `num_threads(num_threads())` on every pragma, so the setting also
// holds for calls from threads other than main (the HTTP server's workers), whose OpenMP defaults would differ.
//
// What it is not: a thread pool or a task scheduler. Each kernel decides how to split its own work and says so
// at its `#pragma omp`.
#pragma once

#include <cstdint>

namespace mriscan {

// Threads used by every parallel kernel from now on; n < 1 is an error (std::invalid_argument).
void set_num_threads(int n);
int num_threads();

// A budget for the calling thread only (0 clears it), winning over set_num_threads() for kernels called from this
// thread. The server's retraining worker uses 1 so that training leaves the other cores to predictions.
void set_thread_num_threads(int n);

// Physical cores of this machine (sysfs topology on Linux; logical CPUs if that is unavailable).
int physical_core_count();

// Runs fn(begin, end) over contiguous blocks of `grain` elements covering [0, n), in parallel when there is more
// than one block. Each thread owns the blocks it is given (static schedule), so fn may write its range freely.
// `grain` should be a multiple of the vector width so that only the last block has a SIMD tail.
template <typename Fn>
void parallel_for_blocks(int64_t n, int64_t grain, Fn&& fn) {
  const int64_t blocks = (n + grain - 1) / grain;
  // Blocks are independent (disjoint output ranges); below two blocks the team is not worth starting.
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * grain;
    fn(begin, begin + grain < n ? begin + grain : n);
  }
}

}  // namespace mriscan
