// Batch norm with ReLU6 fused (BatchNormParams::activation, training mode): every kernel set against the fused
// reference, and against the unfused composition they replace (BN, then ReLU6; ReLU6's backward, then BN's).
//
// Sizes: the channel count sweeps around 8 and 16 lanes (kChannelSweep), rows over 2, 7, 3*8*8 and one 3*56*56
// case long enough to run threaded. gamma in [2, 4] and beta in [2, 4] put outputs on both flat sides of ReLU6
// (each case with enough rows checks that some do). The backward kernels of both tables read the same float z
// (the fast forward's), so they agree on the mask; gradients start non-zero, so overwriting instead of `+=` fails.
// Metric: tests/support/kernel_compare.h (fast float vs reference double, max error / max(1, max |ref|) < 1e-4).
// The finite-difference check of the fused reference is in test_grad_norm_kernels.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/kernels/batchnorm_ref.h"
#include "engine/kernels/dispatch.h"
#include "tests/support/kernel_compare.h"

namespace mriscan {
namespace {

using testing::for_each_fast_table;
using testing::kChannelSweep;
using testing::random_floats;
using testing::relative_error;
using testing::to_double;

constexpr double kTolerance = 1e-4;

struct FusedBnCase {
  int64_t rows;
  int channels;
};

std::vector<FusedBnCase> fused_bn_cases() {
  std::vector<FusedBnCase> cases;
  for (int channels : kChannelSweep)
    for (int64_t rows : {2, 7, 3 * 8 * 8}) cases.push_back({rows, channels});
  cases.push_back({3 * 56 * 56, 2 * testing::kWidestVector + 3});
  return cases;
}

std::string fused_bn_name(const ::testing::TestParamInfo<FusedBnCase>& info) {
  return std::to_string(info.param.rows) + "rows_x" + std::to_string(info.param.channels);
}

class FusedBatchNormReLU6 : public ::testing::TestWithParam<FusedBnCase> {};

TEST_P(FusedBatchNormReLU6, FastMatchesReferenceAndTheUnfusedComposition) {
  const auto [rows, C] = GetParam();
  const BatchNormParams fused{.rows = rows, .channels = C, .activation = Activation::kReLU6};
  const BatchNormParams plain{.rows = rows, .channels = C};
  const size_t size = size_t(rows) * C;
  const auto x = random_floats(size, 61, -1.5f, 2.5f);                                           // (M, C)
  const auto gamma = random_floats(C, 62, 2.0f, 4.0f), beta = random_floats(C, 63, 2.0f, 4.0f);  // (C) each
  const auto dz = random_floats(size, 64);                                                       // (M, C)
  const auto xd = to_double(x), gammad = to_double(gamma), betad = to_double(beta), dzd = to_double(dz);
  for_each_fast_table([&](const KernelTable& fast) {
    // Forward: z = relu6(bn(x)), fast vs reference.
    std::vector<float> z(size, 123.0f), mean(C), inv_std(C);
    std::vector<double> z_ref(size), mean_ref(C), inv_std_ref(C);
    fast.batchnorm_train_forward(fused, x.data(), gamma.data(), beta.data(), z.data(), mean.data(), inv_std.data());
    batchnorm_train_forward_ref<double>(fused, xd.data(), gammad.data(), betad.data(), z_ref.data(), mean_ref.data(),
                                        inv_std_ref.data());
    EXPECT_LT(relative_error(z, z_ref), kTolerance);
    int flat = 0;
    for (float v : z) flat += v == 0.0f || v == 6.0f;
    if (rows >= 7) {
      EXPECT_GT(flat, 0) << "no output on a flat side of ReLU6: the mask is not exercised";
    }

    // The backward's recomputed mask is the forward's to the bit: with dz = 1, sum(dy) of a channel counts exactly
    // the values the forward left on ReLU6's slope (0 < z < 6).
    const std::vector<float> ones(size, 1.0f);
    std::vector<double> on_slope(C), unused(C);
    fast.batchnorm_backward_sums(fused, ones.data(), x.data(), gamma.data(), beta.data(), mean.data(), inv_std.data(),
                                 on_slope.data(), unused.data());
    for (int c = 0; c < C; ++c) {
      int expected = 0;
      for (int64_t r = 0; r < rows; ++r) expected += z[r * C + c] > 0.0f && z[r * C + c] < 6.0f;
      EXPECT_EQ(on_slope[c], double(expected)) << "channel " << c;
    }

    // Backward from dz: fast vs reference, both given the fast forward's mean and inv_std (each recomputes the mask).
    const auto zd = to_double(z), meand = to_double(mean), inv_stdd = to_double(inv_std);
    const auto dx0 = random_floats(size, 65), dgamma0 = random_floats(C, 66), dbeta0 = random_floats(C, 67);
    std::vector<float> dx = dx0, dgamma = dgamma0, dbeta = dbeta0;
    std::vector<double> dx_ref = to_double(dx0), dgamma_ref = to_double(dgamma0), dbeta_ref = to_double(dbeta0);
    fast.batchnorm_train_backward(fused, dz.data(), x.data(), gamma.data(), beta.data(), mean.data(), inv_std.data(),
                                  dx.data(), dgamma.data(), dbeta.data());
    batchnorm_train_backward_ref<double>(fused, dzd.data(), xd.data(), gammad.data(), betad.data(), meand.data(),
                                         inv_stdd.data(), dx_ref.data(), dgamma_ref.data(), dbeta_ref.data());
    EXPECT_LT(relative_error(dx, dx_ref), kTolerance);
    EXPECT_LT(relative_error(dgamma, dgamma_ref), kTolerance);
    EXPECT_LT(relative_error(dbeta, dbeta_ref), kTolerance);

    // The synchronised-BN pieces with the activation: normalise, the two sums, the input gradient from given sums.
    std::vector<float> z_pieces(size, 123.0f);
    fast.batchnorm_normalize(fused, x.data(), gamma.data(), beta.data(), mean.data(), inv_std.data(), z_pieces.data());
    EXPECT_LT(relative_error(z_pieces, zd), kTolerance);
    std::vector<double> sum_dz(C), sum_dz_xhat(C), sum_dz_ref(C), sum_dz_xhat_ref(C);
    fast.batchnorm_backward_sums(fused, dz.data(), x.data(), gamma.data(), beta.data(), mean.data(), inv_std.data(),
                                 sum_dz.data(), sum_dz_xhat.data());
    batchnorm_backward_sums_ref<double>(fused, dzd.data(), xd.data(), gammad.data(), betad.data(), meand.data(),
                                        inv_stdd.data(), sum_dz_ref.data(), sum_dz_xhat_ref.data());
    EXPECT_LT(relative_error(std::vector<float>(sum_dz.begin(), sum_dz.end()), sum_dz_ref), kTolerance);
    EXPECT_LT(relative_error(std::vector<float>(sum_dz_xhat.begin(), sum_dz_xhat.end()), sum_dz_xhat_ref), kTolerance);
    std::vector<float> dx_pieces = dx0;
    std::vector<double> dx_pieces_ref = to_double(dx0);
    fast.batchnorm_backward_input(fused, dz.data(), x.data(), gamma.data(), beta.data(), mean.data(), inv_std.data(),
                                  sum_dz_ref.data(), sum_dz_xhat_ref.data(), 2.0 * rows, dx_pieces.data());
    batchnorm_backward_input_ref<double>(fused, dzd.data(), xd.data(), gammad.data(), betad.data(), meand.data(),
                                         inv_stdd.data(), sum_dz_ref.data(), sum_dz_xhat_ref.data(), 2.0 * rows,
                                         dx_pieces_ref.data());
    EXPECT_LT(relative_error(dx_pieces, dx_pieces_ref), kTolerance);

    // Stored instead of added (accumulate_dx false, the first gradient to reach x): whatever dx held is ignored, and
    // the result is the accumulated one minus what was there.
    BatchNormParams store = fused;
    store.accumulate_dx = false;
    std::vector<float> dx_stored(size, std::nanf("")), dx_stored_ref(size, 0.0f), dgamma_unused(C), dbeta_unused(C);
    std::vector<double> dx_stored_d(size, std::nan("")), dgamma_unused_d(C), dbeta_unused_d(C);
    fast.batchnorm_train_backward(store, dz.data(), x.data(), gamma.data(), beta.data(), mean.data(), inv_std.data(),
                                  dx_stored.data(), dgamma_unused.data(), dbeta_unused.data());
    batchnorm_train_backward_ref<double>(store, dzd.data(), xd.data(), gammad.data(), betad.data(), meand.data(),
                                         inv_stdd.data(), dx_stored_d.data(), dgamma_unused_d.data(),
                                         dbeta_unused_d.data());
    for (size_t i = 0; i < size; ++i) dx_stored_ref[i] = dx[i] - dx0[i];
    EXPECT_LT(relative_error(dx_stored, dx_stored_d), kTolerance);
    EXPECT_LT(relative_error(dx_stored, to_double(dx_stored_ref)), kTolerance);
    std::vector<float> dx_pieces_stored(size, std::nanf(""));
    fast.batchnorm_backward_input(store, dz.data(), x.data(), gamma.data(), beta.data(), mean.data(), inv_std.data(),
                                  sum_dz_ref.data(), sum_dz_xhat_ref.data(), 2.0 * rows, dx_pieces_stored.data());
    for (size_t i = 0; i < size; ++i) dx_pieces_ref[i] -= dx0[i];
    EXPECT_LT(relative_error(dx_pieces_stored, dx_pieces_ref), kTolerance);

    // The unfused composition in the fast table: what ConvBn ran before the fusion.
    std::vector<float> y(size), z_composed(size), dy(size, 0.0f), dx_composed = dx0;
    std::vector<float> dgamma_composed = dgamma0, dbeta_composed = dbeta0;
    fast.batchnorm_train_forward(plain, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), inv_std.data());
    fast.relu6_forward(int64_t(size), y.data(), z_composed.data());
    EXPECT_LT(relative_error(z, to_double(z_composed)), kTolerance);
    fast.relu6_backward(int64_t(size), y.data(), dz.data(), dy.data());
    fast.batchnorm_train_backward(plain, dy.data(), x.data(), gamma.data(), nullptr, mean.data(), inv_std.data(),
                                  dx_composed.data(), dgamma_composed.data(), dbeta_composed.data());
    EXPECT_LT(relative_error(dx, to_double(dx_composed)), kTolerance);
    EXPECT_LT(relative_error(dgamma, to_double(dgamma_composed)), kTolerance);
    EXPECT_LT(relative_error(dbeta, to_double(dbeta_composed)), kTolerance);
  });
}

INSTANTIATE_TEST_SUITE_P(Sweep, FusedBatchNormReLU6, ::testing::ValuesIn(fused_bn_cases()), fused_bn_name);

}  // namespace
}  // namespace mriscan
