// Collective over MPI_COMM_WORLD: MPI_Allreduce / MPI_Iallreduce / MPI_Allgatherv (see the header).
#include "train/mpi_collective.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef MRISCAN_HAVE_MPI
#include <mpi.h>
#endif

namespace mriscan {

namespace {

// The world size an MPI launcher announced in the environment, 0 when there is none.
int launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"})
    if (const char* value = std::getenv(name)) return std::atoi(value);
  return std::getenv("PMIX_RANK") ? 1 : 0;  // PMIx without a size variable: MPI_Init will tell
}

#ifdef MRISCAN_HAVE_MPI

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

class MpiWorld final : public Collective {
 public:
  MpiWorld() {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (provided < MPI_THREAD_FUNNELED)
      abort("mriscan: this MPI library does not support MPI_THREAD_FUNNELED (the trainer runs OpenMP threads)");
  }
  ~MpiWorld() override {
    wait_all();
    MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce_sum(double* data, int64_t n) override { blocking(data, n, MPI_DOUBLE, sizeof(double)); }
  void allreduce_sum(float* data, int64_t n) override { blocking(data, n, MPI_FLOAT, sizeof(float)); }

  void start_allreduce_sum(float* data, int64_t n) override {
    MPI_Request request;
    MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request);
    pending_.push_back(request);
    times.bytes_reduced += n * static_cast<int64_t>(sizeof(float));
  }
  void poll() override {
    if (pending_.empty()) return;
    int done = 0;  // MPI_Testall progresses every pending request (OpenMPI progresses only inside MPI calls)
    MPI_Testall(static_cast<int>(pending_.size()), pending_.data(), &done, MPI_STATUSES_IGNORE);
    if (done) pending_.clear();
  }
  void wait_all() override {
    if (pending_.empty()) return;
    const auto start = Clock::now();
    MPI_Waitall(static_cast<int>(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE);
    pending_.clear();
    times.wait_seconds += seconds_since(start);
  }

  std::vector<float> allgather(const std::vector<float>& local) override { return gather(local, MPI_FLOAT); }
  std::vector<int> allgather(const std::vector<int>& local) override { return gather(local, MPI_INT); }

  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::exit(1);  // not reached
  }

 private:
  void blocking(void* data, int64_t n, MPI_Datatype type, size_t element_bytes) {
    const auto start = Clock::now();
    MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), type, MPI_SUM, MPI_COMM_WORLD);
    times.blocking_seconds += seconds_since(start);
    times.bytes_reduced += n * static_cast<int64_t>(element_bytes);
  }

  template <typename T>
  std::vector<T> gather(const std::vector<T>& local, MPI_Datatype type) {
    const auto start = Clock::now();
    int count = static_cast<int>(local.size());
    std::vector<int> counts(size_), offsets(size_, 0);
    MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
    for (int r = 1; r < size_; ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
    std::vector<T> all(static_cast<size_t>(offsets.back() + counts.back()));
    MPI_Allgatherv(local.data(), count, type, all.data(), counts.data(), offsets.data(), type, MPI_COMM_WORLD);
    times.blocking_seconds += seconds_since(start);
    return all;
  }

  int rank_ = 0, size_ = 1;
  std::vector<MPI_Request> pending_;
};

#endif  // MRISCAN_HAVE_MPI

}  // namespace

std::unique_ptr<Collective> mpi_world_if_launched() {
  const int announced = launcher_world_size();
  if (announced == 0) return nullptr;
#ifdef MRISCAN_HAVE_MPI
  return std::make_unique<MpiWorld>();
#else
  if (announced > 1)
    throw std::runtime_error("started by an MPI launcher with " + std::to_string(announced) +
                             " processes, but this mriscan was built without MPI (install libopenmpi-dev and "
                             "rebuild with -DMRISCAN_MPI=ON)");
  return nullptr;
#endif
}

}  // namespace mriscan
