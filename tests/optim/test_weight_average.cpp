// Tests for WeightAverage (optim/weight_average.h): the averaging formula with its warm-up, worked out by hand;
// swap() exchanging and restoring; a value that never changes keeping its average exactly; the state buffers
// sharing the averages (what the resume state reads and writes).
#include <gtest/gtest.h>

#include "optim/weight_average.h"

namespace mriscan {
namespace {

TEST(WeightAverage, FollowsTheWarmedUpExponentialAverage) {
  Var w = make_var(Tensor(Shape{2}, {0.0f, 4.0f}), /*requires_grad=*/true);
  Tensor running(Shape{1}, {10.0f});
  WeightAverage average({{"w", w}}, {{"bn.running_mean", running}}, /*decay=*/0.5);
  // Update 1: decay_1 = min(0.5, 2 / 11) = 2/11; avg = 2/11 * 0 + 9/11 * 1 = 9/11.
  w->value[0] = 1.0f;
  running[0] = 20.0f;
  average.update();
  // Update 2: decay_2 = min(0.5, 3 / 12) = 1/4; avg = 1/4 * 9/11 + 3/4 * 3 = 9/44 + 99/44 = 108/44.
  w->value[0] = 3.0f;
  average.update();
  average.swap();  // the model now holds the averages
  EXPECT_NEAR(w->value[0], 108.0 / 44.0, 1e-6);
  EXPECT_EQ(w->value[1], 4.0f);  // unchanged value: the average is exactly the value
  // running: 2/11 * 10 + 9/11 * 20 = 200/11, then 1/4 * 200/11 + 3/4 * 20 = 50/11 + 165/11 = 215/11.
  EXPECT_NEAR(running[0], 215.0 / 11.0, 1e-5);
  average.swap();  // and back
  EXPECT_EQ(w->value[0], 3.0f);
  EXPECT_EQ(running[0], 20.0f);
  EXPECT_EQ(average.updates(), 2);
}

TEST(WeightAverage, AFrozenValueKeepsItsAverageExactly) {
  Var w = make_var(Tensor(Shape{3}, {0.1f, -7.3e-5f, 123.456f}), /*requires_grad=*/false);
  WeightAverage average({{"w", w}}, {}, 0.999);
  for (int i = 0; i < 1000; ++i) average.update();
  const Tensor before = w->value.clone();
  average.swap();
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(w->value[i], before[i]);
}

TEST(WeightAverage, StateBuffersAreTheAveragesUnderPrefixedNames) {
  Var w = make_var(Tensor(Shape{1}, {2.0f}), true);
  WeightAverage average({{"features.0.0.weight", w}}, {}, 0.9);
  std::vector<NamedBuffer> state = average.state_buffers();
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].name, "ema.features.0.0.weight");
  state[0].tensor[0] = 5.0f;  // as load_training_state fills them on resume
  average.swap();
  EXPECT_EQ(w->value[0], 5.0f);
  EXPECT_THROW(WeightAverage({{"w", w}}, {}, 1.0), std::invalid_argument);
  EXPECT_THROW(WeightAverage({{"w", w}}, {}, 0.0), std::invalid_argument);
}

}  // namespace
}  // namespace mriscan
