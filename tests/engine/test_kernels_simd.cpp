// Every fast kernel, in every kernel set this CPU runs (runnable_fast_kernels()), against its reference kernel.
//
// Method and metric: tests/support/kernel_compare.h (fast in float vs reference in double, max |fast - ref| /
// max(1, max |ref|) < 1e-4). Sizes sweep the channel count around 8 and 16 lanes (kChannelSweep), the spatial
// size over 1, 2, 3, 7, 8 (every padding/border pattern of a 3x3 window) and a few 56x56 shapes, stride 1 and 2,
// batch 1 and 3. Backward kernels start from non-zero random gradients, so a kernel that overwrites instead of
// accumulating (`+=`) fails. The forward kernels' fused epilogues (bias + ReLU6) are tested in
// tests/engine/test_kernels_fused.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/batchnorm_ref.h"
#include "engine/kernels/conv2d_ref.h"
#include "engine/kernels/depthwise_ref.h"
#include "engine/kernels/dispatch.h"
#include "engine/kernels/elementwise_ref.h"
#include "engine/kernels/gemm_ref.h"
#include "engine/kernels/pool_ref.h"
#include "engine/parallel.h"
#include "tests/support/kernel_compare.h"

namespace mriscan {
namespace {

using testing::conv_cases;
using testing::conv_name;
using testing::conv_params;
using testing::ConvCase;
using testing::depthwise_cases;
using testing::depthwise_name;
using testing::depthwise_params;
using testing::DepthwiseCase;
using testing::for_each_fast_table;
using testing::gemm_cases;
using testing::gemm_name;
using testing::gemm_params;
using testing::GemmCase;
using testing::kChannelSweep;
using testing::random_floats;
using testing::relative_error;
using testing::to_double;

constexpr int V = testing::kWidestVector;

// ---- depthwise -------------------------------------------------------------------------------------------------

class KernelDepthwise : public ::testing::TestWithParam<DepthwiseCase> {};

TEST_P(KernelDepthwise, MatchesReference) {
  const DepthwiseCase& c = GetParam();
  const DepthwiseParams p = depthwise_params(c);
  const size_t x_size = size_t(c.batch) * c.h * c.w * c.channels;
  const size_t y_size = size_t(c.batch) * p.out_h * p.out_w * c.channels;
  const size_t w_size = size_t(c.kernel) * c.kernel * c.channels;
  const auto x = random_floats(x_size, 1), w = random_floats(w_size, 2), bias = random_floats(c.channels, 3);
  const auto dy = random_floats(y_size, 4);
  const auto dx0 = random_floats(x_size, 5), dw0 = random_floats(w_size, 6), dbias0 = random_floats(c.channels, 7);
  const auto xd = to_double(x), wd = to_double(w), biasd = to_double(bias), dyd = to_double(dy);
  for_each_fast_table([&](const KernelTable& fast) {
    for (bool with_bias : {true, false}) {
      std::vector<float> y(y_size, 123.0f);  // forward must overwrite this garbage
      std::vector<double> y_ref(y_size);
      fast.depthwise_forward(p, x.data(), w.data(), with_bias ? bias.data() : nullptr, y.data());
      depthwise_forward_ref<double>(p, xd.data(), wd.data(), with_bias ? biasd.data() : nullptr, y_ref.data());
      EXPECT_CLOSE(y, y_ref) << " with_bias=" << with_bias;
    }

    std::vector<float> dx = dx0;
    std::vector<double> dx_ref = to_double(dx0);
    fast.depthwise_backward_input(p, dy.data(), w.data(), dx.data());
    depthwise_backward_input_ref<double>(p, dyd.data(), wd.data(), dx_ref.data());
    EXPECT_CLOSE(dx, dx_ref);

    // Stored instead of added (the first gradient to reach x): whatever dx held is ignored, in both tables.
    DepthwiseParams store = p;
    store.accumulate_dx = false;
    std::vector<float> dx_stored(x_size, std::nanf(""));
    std::vector<double> dx_stored_ref(x_size, std::nan("")), dx_added_ref(x_size);
    fast.depthwise_backward_input(store, dy.data(), w.data(), dx_stored.data());
    depthwise_backward_input_ref<double>(store, dyd.data(), wd.data(), dx_stored_ref.data());
    for (size_t i = 0; i < x_size; ++i) dx_added_ref[i] = dx_ref[i] - double(dx0[i]);
    EXPECT_CLOSE(dx_stored, dx_stored_ref);
    EXPECT_CLOSE(dx_stored, dx_added_ref);

    std::vector<float> dw = dw0, dbias = dbias0;
    std::vector<double> dw_ref = to_double(dw0), dbias_ref = to_double(dbias0);
    fast.depthwise_backward_weight(p, x.data(), dy.data(), dw.data(), dbias.data());
    depthwise_backward_weight_ref<double>(p, xd.data(), dyd.data(), dw_ref.data(), dbias_ref.data());
    EXPECT_CLOSE(dw, dw_ref);
    EXPECT_CLOSE(dbias, dbias_ref);

    std::vector<float> dw_no_bias = dw0;  // a null dbias means "no bias": dw is unchanged by it
    fast.depthwise_backward_weight(p, x.data(), dy.data(), dw_no_bias.data(), nullptr);
    EXPECT_CLOSE(dw_no_bias, dw_ref);
  });
}

INSTANTIATE_TEST_SUITE_P(Sweep, KernelDepthwise, ::testing::ValuesIn(depthwise_cases()), depthwise_name);

// ---- dense KxK convolution (the stem) --------------------------------------------------------------------------

class KernelConv2d : public ::testing::TestWithParam<ConvCase> {};

TEST_P(KernelConv2d, MatchesReference) {
  const ConvCase& c = GetParam();
  const Conv2dParams p = conv_params(c);
  const size_t x_size = size_t(c.batch) * c.h * c.w * c.in_c;
  const size_t y_size = size_t(c.batch) * p.out_h * p.out_w * c.out_c;
  const size_t w_size = size_t(c.kernel) * c.kernel * c.in_c * c.out_c;
  const auto x = random_floats(x_size, 11), w = random_floats(w_size, 12), bias = random_floats(c.out_c, 13);
  const auto dy = random_floats(y_size, 14);
  const auto dx0 = random_floats(x_size, 15), dw0 = random_floats(w_size, 16), dbias0 = random_floats(c.out_c, 17);
  const auto xd = to_double(x), wd = to_double(w), biasd = to_double(bias), dyd = to_double(dy);
  for_each_fast_table([&](const KernelTable& fast) {
    std::vector<float> y(y_size, 123.0f);
    std::vector<double> y_ref(y_size);
    fast.conv2d_forward(p, x.data(), w.data(), bias.data(), y.data());
    conv2d_forward_ref<double>(p, xd.data(), wd.data(), biasd.data(), y_ref.data());
    EXPECT_CLOSE(y, y_ref);

    std::vector<float> dx = dx0;
    std::vector<double> dx_ref = to_double(dx0);
    fast.conv2d_backward_input(p, dy.data(), w.data(), dx.data());
    conv2d_backward_input_ref<double>(p, dyd.data(), wd.data(), dx_ref.data());
    EXPECT_CLOSE(dx, dx_ref);

    std::vector<float> dw = dw0, dbias = dbias0;
    std::vector<double> dw_ref = to_double(dw0), dbias_ref = to_double(dbias0);
    fast.conv2d_backward_weight(p, x.data(), dy.data(), dw.data(), dbias.data());
    conv2d_backward_weight_ref<double>(p, xd.data(), dyd.data(), dw_ref.data(), dbias_ref.data());
    EXPECT_CLOSE(dw, dw_ref);
    EXPECT_CLOSE(dbias, dbias_ref);
  });
}

INSTANTIATE_TEST_SUITE_P(Sweep, KernelConv2d, ::testing::ValuesIn(conv_cases()), conv_name);

// ---- GEMM ------------------------------------------------------------------------------------------------------

class KernelGemm : public ::testing::TestWithParam<GemmCase> {};

TEST_P(KernelGemm, MatchesReference) {
  const GemmCase& c = GetParam();
  const GemmParams p = gemm_params(c);
  const auto a = random_floats(size_t(c.m) * c.k, 21), b = random_floats(size_t(c.k) * c.n, 22);
  const auto c0 = random_floats(size_t(c.m) * c.n, 23);  // overwritten, or accumulated into
  std::vector<double> out_ref = to_double(c0);
  const auto ad = to_double(a), bd = to_double(b);
  gemm_ref<double>(p, ad.data(), bd.data(), out_ref.data());
  for_each_fast_table([&](const KernelTable& fast) {
    std::vector<float> out = c0;
    fast.gemm(p, a.data(), b.data(), out.data());
    EXPECT_CLOSE(out, out_ref);
  });
}

INSTANTIATE_TEST_SUITE_P(Sweep, KernelGemm, ::testing::ValuesIn(gemm_cases()), gemm_name);

// ---- row-wise kernels: batch norm, channel affine, row bias, global average pool --------------------------------

struct RowsCase {
  int64_t rows;
  int channels;
};

std::string rows_name(const ::testing::TestParamInfo<RowsCase>& info) {
  return std::to_string(info.param.rows) + "rows_x" + std::to_string(info.param.channels);
}

std::vector<RowsCase> rows_cases() {
  std::vector<RowsCase> cases;
  for (int channels : kChannelSweep)
    for (int64_t rows : {1, 2, 7, 3 * 8 * 8}) cases.push_back({rows, channels});
  cases.push_back({3 * 56 * 56, 2 * V + 3});  // long enough to run threaded and to span many float blocks
  return cases;
}

class KernelRows : public ::testing::TestWithParam<RowsCase> {};

TEST_P(KernelRows, BatchNormMatchesReference) {
  const auto [rows, C] = GetParam();
  BatchNormParams p;
  p.rows = rows, p.channels = C;
  const size_t size = size_t(rows) * C;
  const auto x = random_floats(size, 31, 2.0f, 4.0f);  // mean ~3 >> std: the variance must not cancel
  const auto gamma = random_floats(C, 32, 0.5f, 1.5f), beta = random_floats(C, 33);
  const auto xd = to_double(x), gammad = to_double(gamma), betad = to_double(beta);
  for_each_fast_table([&](const KernelTable& fast) {
    std::vector<float> y(size, 123.0f), mean(C), inv_std(C);
    std::vector<double> y_ref(size), mean_ref(C), inv_std_ref(C);
    fast.batchnorm_train_forward(p, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), inv_std.data());
    batchnorm_train_forward_ref<double>(p, xd.data(), gammad.data(), betad.data(), y_ref.data(), mean_ref.data(),
                                        inv_std_ref.data());
    EXPECT_CLOSE(mean, mean_ref);
    // inv_std reaches 1/sqrt(eps) ~ 316 for a single row (zero variance): compare it relative to itself.
    EXPECT_CLOSE(inv_std, inv_std_ref);
    EXPECT_CLOSE(y, y_ref);

    // Backward from the float statistics (both kernels see the same mean / inv_std).
    const auto dy = random_floats(size, 34);
    const auto dx0 = random_floats(size, 35), dgamma0 = random_floats(C, 36), dbeta0 = random_floats(C, 37);
    const auto dyd = to_double(dy), meand = to_double(mean), inv_stdd = to_double(inv_std);
    std::vector<float> dx = dx0, dgamma = dgamma0, dbeta = dbeta0;
    std::vector<double> dx_ref = to_double(dx0), dgamma_ref = to_double(dgamma0), dbeta_ref = to_double(dbeta0);
    fast.batchnorm_train_backward(p, dy.data(), x.data(), gamma.data(), nullptr, mean.data(), inv_std.data(), dx.data(),
                                  dgamma.data(), dbeta.data());
    batchnorm_train_backward_ref<double>(p, dyd.data(), xd.data(), gammad.data(), nullptr, meand.data(),
                                         inv_stdd.data(), dx_ref.data(), dgamma_ref.data(), dbeta_ref.data());
    EXPECT_CLOSE(dx, dx_ref);
    EXPECT_CLOSE(dgamma, dgamma_ref);
    EXPECT_CLOSE(dbeta, dbeta_ref);

    std::vector<float> dx_only = dx0;  // null dgamma / dbeta: still computes dx
    fast.batchnorm_train_backward(p, dy.data(), x.data(), gamma.data(), nullptr, mean.data(), inv_std.data(),
                                  dx_only.data(), nullptr, nullptr);
    EXPECT_EQ(dx_only, dx);
  });
}

// The pieces that synchronised batch norm calls with sums added over processes in between.
TEST_P(KernelRows, BatchNormPiecesMatchReference) {
  const auto [rows, C] = GetParam();
  BatchNormParams p;
  p.rows = rows, p.channels = C;
  const size_t size = size_t(rows) * C;
  const auto x = random_floats(size, 51, 2.0f, 4.0f);  // mean ~3 >> std
  const auto gamma = random_floats(C, 52, 0.5f, 1.5f), beta = random_floats(C, 53), dy = random_floats(size, 54);
  const auto xd = to_double(x), gammad = to_double(gamma), betad = to_double(beta), dyd = to_double(dy);
  for_each_fast_table([&](const KernelTable& fast) {
    std::vector<double> mean(C), m2(C), mean_ref(C), m2_ref(C);
    fast.batchnorm_statistics(p, x.data(), mean.data(), m2.data());
    batchnorm_statistics_ref<double>(p, xd.data(), mean_ref.data(), m2_ref.data());
    for (int c = 0; c < C; ++c) {
      EXPECT_NEAR(mean[c], mean_ref[c], 1e-6 * (1.0 + std::abs(mean_ref[c]))) << "channel " << c;
      EXPECT_NEAR(m2[c], m2_ref[c], 1e-5 * (1.0 + m2_ref[c])) << "channel " << c;
    }
    std::vector<float> meanf(C), inv_std(C);
    for (int c = 0; c < C; ++c) {
      meanf[c] = static_cast<float>(mean_ref[c]);
      inv_std[c] = static_cast<float>(1.0 / std::sqrt(m2_ref[c] / rows + 1e-5));
    }
    const auto meand = to_double(meanf), inv_stdd = to_double(inv_std);
    std::vector<float> y(size, 123.0f);
    std::vector<double> y_ref(size);
    fast.batchnorm_normalize(p, x.data(), gamma.data(), beta.data(), meanf.data(), inv_std.data(), y.data());
    batchnorm_normalize_ref<double>(p, xd.data(), gammad.data(), betad.data(), meand.data(), inv_stdd.data(),
                                    y_ref.data());
    EXPECT_CLOSE(y, y_ref);

    std::vector<double> sum_dy(C, 123.0), sum_dy_xhat(C, 123.0), sum_dy_ref(C), sum_dy_xhat_ref(C);  // overwritten
    fast.batchnorm_backward_sums(p, dy.data(), x.data(), gamma.data(), nullptr, meanf.data(), inv_std.data(),
                                 sum_dy.data(), sum_dy_xhat.data());
    batchnorm_backward_sums_ref<double>(p, dyd.data(), xd.data(), gammad.data(), nullptr, meand.data(), inv_stdd.data(),
                                        sum_dy_ref.data(), sum_dy_xhat_ref.data());
    EXPECT_CLOSE(std::vector<float>(sum_dy.begin(), sum_dy.end()), sum_dy_ref);
    EXPECT_CLOSE(std::vector<float>(sum_dy_xhat.begin(), sum_dy_xhat.end()), sum_dy_xhat_ref);
    // The input gradient from given sums, over more rows than this process holds (as with 3 processes).
    const auto dx0 = random_floats(size, 55);
    std::vector<float> dx = dx0;
    std::vector<double> dx_ref = to_double(dx0);
    const double total_rows = 3.0 * rows;
    fast.batchnorm_backward_input(p, dy.data(), x.data(), gamma.data(), nullptr, meanf.data(), inv_std.data(),
                                  sum_dy_ref.data(), sum_dy_xhat_ref.data(), total_rows, dx.data());
    batchnorm_backward_input_ref<double>(p, dyd.data(), xd.data(), gammad.data(), nullptr, meand.data(),
                                         inv_stdd.data(), sum_dy_ref.data(), sum_dy_xhat_ref.data(), total_rows,
                                         dx_ref.data());
    EXPECT_CLOSE(dx, dx_ref);
  });
}

TEST_P(KernelRows, ChannelAffineAndRowBiasMatchReference) {
  const auto [rows, C] = GetParam();
  const size_t size = size_t(rows) * C;
  const auto x = random_floats(size, 41), scale = random_floats(C, 42), shift = random_floats(C, 43);
  const auto xd = to_double(x), scaled = to_double(scale), shiftd = to_double(shift);
  for_each_fast_table([&](const KernelTable& fast) {
    std::vector<float> y(size, 123.0f);
    std::vector<double> y_ref(size);
    fast.channel_affine_forward(rows, C, x.data(), scale.data(), shift.data(), y.data());
    channel_affine_forward_ref<double>(rows, C, xd.data(), scaled.data(), shiftd.data(), y_ref.data());
    EXPECT_CLOSE(y, y_ref);

    std::vector<float> biased = x;
    std::vector<double> biased_ref = xd;
    fast.bias_add_rows(rows, C, shift.data(), biased.data());
    bias_add_rows_ref<double>(rows, C, shiftd.data(), biased_ref.data());
    EXPECT_CLOSE(biased, biased_ref);

    std::vector<float> dbias = scale;  // accumulate onto non-zero values
    std::vector<double> dbias_ref = scaled;
    fast.bias_backward_rows(rows, C, x.data(), dbias.data());
    bias_backward_rows_ref<double>(rows, C, xd.data(), dbias_ref.data());
    EXPECT_CLOSE(dbias, dbias_ref);
  });
}

INSTANTIATE_TEST_SUITE_P(Sweep, KernelRows, ::testing::ValuesIn(rows_cases()), rows_name);

struct PoolCase {
  int batch, size, channels;
};

class KernelPool : public ::testing::TestWithParam<PoolCase> {};

TEST_P(KernelPool, GlobalAveragePoolMatchesReference) {
  const PoolCase& c = GetParam();
  PoolParams p;
  p.batch = c.batch, p.h = c.size, p.w = c.size + 1, p.channels = c.channels;  // non-square on purpose
  const size_t x_size = size_t(c.batch) * p.h * p.w * c.channels, y_size = size_t(c.batch) * c.channels;
  const auto x = random_floats(x_size, 51), dy = random_floats(y_size, 52), dx0 = random_floats(x_size, 53);
  const auto xd = to_double(x), dyd = to_double(dy);

  std::vector<double> y_ref(y_size), dx_ref = to_double(dx0);
  global_avg_pool_forward_ref<double>(p, xd.data(), y_ref.data());
  global_avg_pool_backward_ref<double>(p, dyd.data(), dx_ref.data());
  for_each_fast_table([&](const KernelTable& fast) {
    std::vector<float> y(y_size, 123.0f);
    fast.global_avg_pool_forward(p, x.data(), y.data());
    EXPECT_CLOSE(y, y_ref);
    std::vector<float> dx = dx0;
    fast.global_avg_pool_backward(p, dy.data(), dx.data());
    EXPECT_CLOSE(dx, dx_ref);
  });
}

std::vector<PoolCase> pool_cases() {
  std::vector<PoolCase> cases;
  for (int channels : kChannelSweep)
    for (int size : {1, 2, 7}) cases.push_back({(channels + size) % 2 ? 3 : 1, size, channels});
  cases.push_back({3, 56, V + 1});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Sweep, KernelPool, ::testing::ValuesIn(pool_cases()),
                         [](const ::testing::TestParamInfo<PoolCase>& info) {
                           return "n" + std::to_string(info.param.batch) + "_" + std::to_string(info.param.size) + "x" +
                                  std::to_string(info.param.size + 1) + "x" + std::to_string(info.param.channels);
                         });

// ---- flat elementwise kernels ----------------------------------------------------------------------------------

class KernelElementwise : public ::testing::TestWithParam<int64_t> {};

TEST_P(KernelElementwise, MatchesReference) {
  const int64_t n = GetParam();
  auto x = random_floats(n, 61, -2.0f, 8.0f);                           // both sides of ReLU6's [0, 6] window
  for (int64_t i = 0; i < n; i += 5) x[i] = (i / 5) % 2 ? 6.0f : 0.0f;  // and its edges, where dx must not flow
  const auto b = random_floats(n, 62), dx0 = random_floats(n, 63);
  const auto xd = to_double(x), bd = to_double(b);
  for_each_fast_table([&](const KernelTable& fast) {
    std::vector<float> y(n, 123.0f);
    std::vector<double> y_ref(n);
    fast.relu6_forward(n, x.data(), y.data());
    relu6_forward_ref<double>(n, xd.data(), y_ref.data());
    EXPECT_CLOSE(y, y_ref);

    std::vector<float> dx = dx0;
    std::vector<double> dx_ref = to_double(dx0);
    fast.relu6_backward(n, x.data(), b.data(), dx.data());
    relu6_backward_ref<double>(n, xd.data(), bd.data(), dx_ref.data());
    EXPECT_CLOSE(dx, dx_ref);

    fast.add_forward(n, x.data(), b.data(), y.data());
    add_forward_ref<double>(n, xd.data(), bd.data(), y_ref.data());
    EXPECT_CLOSE(y, y_ref);

    std::vector<float> acc = dx0;
    std::vector<double> acc_ref = to_double(dx0);
    fast.axpy(n, -0.75f, x.data(), acc.data());
    axpy_ref<double>(n, -0.75, xd.data(), acc_ref.data());
    EXPECT_CLOSE(acc, acc_ref);

    fast.scale(n, 1.5f, acc.data());
    scale_ref<double>(n, 1.5, acc_ref.data());
    EXPECT_CLOSE(acc, acc_ref);
  });
}

// Around the vector width, plus one size that spans several parallel blocks and ends in a tail.
INSTANTIATE_TEST_SUITE_P(Sweep, KernelElementwise,
                         ::testing::Values(1, V - 1, V, V + 1, 2 * V + 3, 3 * V + 5, 1000, (1 << 17) + 37),
                         [](const ::testing::TestParamInfo<int64_t>& info) {
                           return "n" + std::to_string(info.param);
                         });

// ---- threading ------------------------------------------------------------------------------------

// The per-thread partial buffers and output bands must give the same answer for any team size, including an
// odd one that does not divide the rows.
TEST(KernelThreads, ResultsDoNotDependOnThreadCount) {
  DepthwiseParams p;
  p.batch = 3, p.in_h = p.in_w = 9, p.channels = 2 * V + 3, p.stride = 2, p.pad = 1;
  p.out_h = p.out_w = conv_output_size(9, 3, 2, 1);
  const auto x = random_floats(size_t(3) * 9 * 9 * p.channels, 71);
  const auto dy = random_floats(size_t(3) * p.out_h * p.out_w * p.channels, 72);
  GemmParams g;
  g.m = 29, g.n = 300, g.k = 1001, g.trans_a = true, g.accumulate = true;  // gemm_reduce splits K: 1, 3 threads
  const auto a = random_floats(size_t(g.k) * g.m, 73), b = random_floats(size_t(g.k) * g.n, 74);

  const int saved = num_threads();
  for_each_fast_table([&](const KernelTable& fast) {
    std::vector<std::vector<float>> dw(2, std::vector<float>(9 * p.channels, 0.5f));
    std::vector<std::vector<float>> c(2, std::vector<float>(size_t(g.m) * g.n, 0.5f));
    const int team_sizes[2] = {1, 3};
    for (int i = 0; i < 2; ++i) {
      set_num_threads(team_sizes[i]);
      fast.depthwise_backward_weight(p, x.data(), dy.data(), dw[i].data(), nullptr);
      fast.gemm(g, a.data(), b.data(), c[i].data());
    }
    EXPECT_LT(relative_error(dw[1], to_double(dw[0])), 1e-6);
    EXPECT_LT(relative_error(c[1], to_double(c[0])), 1e-6);
  });
  set_num_threads(saved);
  EXPECT_THROW(set_num_threads(0), std::invalid_argument);
}

}  // namespace
}  // namespace mriscan
