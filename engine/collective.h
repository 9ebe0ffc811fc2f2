// Collective operations among the processes of a data-parallel run, one process per MPI rank: sums of gradients
// and of batch-norm statistics, and gathers of validation outputs. The engine and the layers see only this
// interface; the MPI implementation lives in train/mpi_collective.h and is created by `mriscan train` when it was
// launched by mpirun. single_process() is the world of one, where every operation is the identity.
//
// Every process must call the same collectives in the same order with the same sizes (MPI's rule); the trainer
// guarantees it by giving every rank the same number of batches and the same model.
// What it is not: a transport of its own (MPI is the standard one) or a parameter server.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mriscan {

// Seconds spent in communication, for the progress line and the benchmark: blocked in wait_all() (the part not
// hidden behind computation), and in blocking collectives.
struct CollectiveTimes {
  double wait_seconds = 0.0;
  double blocking_seconds = 0.0;
  int64_t bytes_reduced = 0;
};

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In-place sums over all processes, blocking.
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  // Starts an in-place float sum; `data` (n) must stay alive and untouched until wait_all() returns. poll() lets
  // the transport progress the started sums (called between backward ops so they overlap with computation).
  virtual void start_allreduce_sum(float* data, int64_t n) = 0;
  virtual void poll() = 0;
  virtual void wait_all() = 0;
  // Every process's `local` values, concatenated in rank order, on every process (lengths may differ).
  virtual std::vector<float> allgather(const std::vector<float>& local) = 0;
  virtual std::vector<int> allgather(const std::vector<int>& local) = 0;
  // Ends every process of the job with `message` on stderr (used when one rank fails, so none hangs).
  [[noreturn]] virtual void abort(const std::string& message) = 0;

  CollectiveTimes times;
};

// The world of one process (no MPI): sums and gathers return their input.
Collective& single_process();

}  // namespace mriscan
