// The single-process Collective: every collective of a world of one is the identity.
#include "engine/collective.h"

#include <cstdio>
#include <cstdlib>

namespace mriscan {

namespace {

class SingleProcess final : public Collective {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(double*, int64_t) override {}
  void allreduce_sum(float*, int64_t) override {}
  void start_allreduce_sum(float*, int64_t) override {}
  void poll() override {}
  void wait_all() override {}
  std::vector<float> allgather(const std::vector<float>& local) override { return local; }
  std::vector<int> allgather(const std::vector<int>& local) override { return local; }
  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::exit(1);
  }
};

}  // namespace

Collective& single_process() {
  static SingleProcess world;
  return world;
}

}  // namespace mriscan
