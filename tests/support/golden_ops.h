// Reading tests/golden/ops.json (written in float64 by tests/golden/make_golden_ops.py, engine layouts) and comparing
// against it; shared by the per-op golden tests. What it is not: the whole-model fixtures (tests/models/).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tensor.h"

namespace mriscan::testing {

inline constexpr const char* kOpsPath = MRISCAN_SOURCE_DIR "/tests/golden/ops.json";
inline constexpr const char* kRegenerate = "/usr/bin/python3 tests/golden/make_golden_ops.py";
inline constexpr double kFloatRelativeTolerance = 1e-4;  // of max |golden value|, per tensor
inline constexpr double kDoubleAbsoluteTolerance = 1e-9;  // leaves room only for summation order

// ops.json, parsed once; null when the file is absent.
inline const nlohmann::json* golden_ops() {
  static const std::unique_ptr<nlohmann::json> ops = []() -> std::unique_ptr<nlohmann::json> {
    std::ifstream in(kOpsPath);
    if (!in) return nullptr;
    return std::make_unique<nlohmann::json>(nlohmann::json::parse(in));
  }();
  return ops.get();
}

// One case's tensors, looked up by name with a clear error when one is missing.
class GoldenCase {
 public:
  GoldenCase(std::string name, const nlohmann::json& c) : name_(std::move(name)), case_(c) {}
  const std::string& name() const { return name_; }
  const std::string& op() const { return case_.at("op").get_ref<const std::string&>(); }
  const nlohmann::json& params() const { return case_.at("params"); }
  int param(const char* key) const { return params().at(key).get<int>(); }
  bool has(const std::string& tensor) const { return case_.at("tensors").contains(tensor); }
  std::vector<double> data(const std::string& tensor) const {
    return entry(tensor).at("data").get<std::vector<double>>();
  }
  Shape shape(const std::string& tensor) const {
    return Shape(entry(tensor).at("shape").get<std::vector<int64_t>>());
  }
  Tensor tensor(const std::string& tensor) const {  // as float, for the layers
    const std::vector<double> values = data(tensor);
    return Tensor(shape(tensor), std::vector<float>(values.begin(), values.end()));
  }
  std::vector<int> labels() const {  // stored as float64 class indices
    std::vector<int> out;
    for (double v : data("labels")) out.push_back(static_cast<int>(std::lround(v)));
    return out;
  }

 private:
  const nlohmann::json& entry(const std::string& tensor) const {
    if (!has(tensor)) throw std::runtime_error("ops.json case '" + name_ + "' has no tensor '" + tensor + "'");
    return case_.at("tensors").at(tensor);
  }
  std::string name_;
  const nlohmann::json& case_;
};

// The case, or null when ops.json lacks it.
inline std::unique_ptr<GoldenCase> load_case(const std::string& name) {
  const nlohmann::json* ops = golden_ops();
  if (!ops || !ops->contains(name)) return nullptr;
  return std::make_unique<GoldenCase>(name, ops->at(name));
}

// Binds `var` to the case, or skips (file missing) / fails (case missing) with the regeneration command. A macro
// because GTEST_SKIP and ASSERT_* return only from the function they are written in.
#define LOAD_CASE_OR_SKIP(var, name)                                                                          \
  if (!::mriscan::testing::golden_ops())                                                                     \
    GTEST_SKIP() << ::mriscan::testing::kOpsPath                                                             \
                 << " is missing; regenerate it with: " << ::mriscan::testing::kRegenerate;                  \
  const std::unique_ptr<::mriscan::testing::GoldenCase> var##_owner = ::mriscan::testing::load_case(name);   \
  ASSERT_TRUE(var##_owner) << "ops.json has no case '" << (name)                                             \
                           << "'; regenerate it with: " << ::mriscan::testing::kRegenerate;                  \
  const ::mriscan::testing::GoldenCase& var = *var##_owner

// Largest |actual - expected| and largest |expected|.
template <typename T>
std::pair<double, double> difference(const T* actual, const std::vector<double>& expected) {
  double max_diff = 0.0, max_value = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(double(actual[i]) - expected[i]));
    max_value = std::max(max_value, std::abs(expected[i]));
  }
  return {max_diff, max_value};
}

// Float path: a layer's tensor (or gradient) against torch, relative to the tensor's largest value.
inline void expect_close_float(const GoldenCase& c, const std::string& name, const Tensor& actual) {
  ASSERT_TRUE(actual.defined()) << c.name() << ": " << name << " was never computed";
  ASSERT_EQ(actual.numel(), c.shape(name).numel()) << c.name() << ": " << name << " " << actual.shape().str();
  const auto [diff, value] = difference(actual.data(), c.data(name));
  const double relative = diff / std::max(value, 1e-30);
  std::printf("  %-20s layer(float)  %-18s max |diff| %.3e  (max |value| %.3f, relative %.3e)\n", c.name().c_str(),
              name.c_str(), diff, value, relative);
  EXPECT_LT(relative, kFloatRelativeTolerance) << c.name() << ": " << name;
}

// Double path: a reference kernel's buffer against torch, absolute.
inline void expect_close_double(const GoldenCase& c, const std::string& name, const std::vector<double>& actual,
                                double tolerance = kDoubleAbsoluteTolerance) {
  ASSERT_EQ(actual.size(), c.data(name).size()) << c.name() << ": " << name;
  const auto [diff, value] = difference(actual.data(), c.data(name));
  std::printf("  %-20s ref(double)   %-18s max |diff| %.3e  (max |value| %.3f)\n", c.name().c_str(), name.c_str(),
              diff, value);
  EXPECT_LT(diff, tolerance) << c.name() << ": " << name;
}

}  // namespace mriscan::testing
