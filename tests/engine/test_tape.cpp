// Tests for engine/tape.h on its own, with hand-written ops (no layer involved): reverse-order backward,
// accumulation on fan-out, what is and is not recorded, gradients of intermediate Vars, seeds, zero_grad, and the
// op profile. The layers' own gradients are checked elsewhere (tests/layers/, finite differences).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/tape.h"

namespace mriscan {
namespace {

// y = alpha * x, recorded with its backward dx += alpha * dy.
Var scale_op(Tape& tape, const Var& x, float alpha, std::vector<std::string>* backward_order = nullptr,
             const std::string& name = "scale") {
  Var y = make_var(Tensor::uninitialized(x->value.shape()));
  for (int64_t i = 0; i < x->value.numel(); ++i) y->value[i] = alpha * x->value[i];
  tape.record(name, {x}, y, [x, y, alpha, backward_order, name] {
    if (backward_order) backward_order->push_back(name);
    if (!x->requires_grad) return;
    Tensor& dx = x->grad_buffer();
    for (int64_t i = 0; i < dx.numel(); ++i) dx[i] += alpha * y->grad[i];
  });
  return y;
}

// s = sum(a * b) elementwise (a scalar), with both input gradients.
Var dot_op(Tape& tape, const Var& a, const Var& b) {
  Var s = make_var(Tensor(Shape{}));
  for (int64_t i = 0; i < a->value.numel(); ++i) s->value[0] += a->value[i] * b->value[i];
  tape.record("dot", {a, b}, s, [a, b, s] {
    const float ds = s->grad[0];
    if (a->requires_grad)
      for (int64_t i = 0; i < a->value.numel(); ++i) a->grad_buffer()[i] += ds * b->value[i];
    if (b->requires_grad)
      for (int64_t i = 0; i < b->value.numel(); ++i) b->grad_buffer()[i] += ds * a->value[i];
  });
  return s;
}

TEST(Tape, FanOutAccumulatesBothPathsInReverseOrder) {
  // x is used twice: s = dot(3x, x) = 3 * sum(x^2), so ds/dx = 6x; the two contributions (3x through the dot's
  // second input, and 3 * x through the scale) must both arrive.
  Tape tape;
  Var x = make_var(Tensor(Shape{3}, {1.0f, -2.0f, 0.5f}), /*requires_grad=*/true);
  std::vector<std::string> order;
  Var a = scale_op(tape, x, 3.0f, &order, "first");
  Var b = scale_op(tape, a, 1.0f, &order, "second");
  Var s = dot_op(tape, b, x);
  ASSERT_EQ(tape.size(), 3u);
  EXPECT_FLOAT_EQ(s->value[0], 3.0f * (1.0f + 4.0f + 0.25f));
  tape.backward(s);
  EXPECT_EQ(order, (std::vector<std::string>{"second", "first"}));  // reverse recording order
  ASSERT_TRUE(x->grad.defined());
  EXPECT_EQ(x->grad.to_vector(), (std::vector<float>{6.0f, -12.0f, 3.0f}));
}

TEST(Tape, OpsWithoutGradientInputsAreNotRecorded) {
  Tape tape;
  Var frozen = make_var(Tensor(Shape{2}, {1.0f, 2.0f}));  // requires_grad false: an input image, a frozen weight
  Var y = scale_op(tape, frozen, 2.0f);
  EXPECT_EQ(tape.size(), 0u);
  EXPECT_FALSE(y->requires_grad);
  Var w = make_var(Tensor(Shape{2}, {0.5f, 0.5f}), true);
  Var s = dot_op(tape, y, w);  // one input needs a gradient: recorded, and the output needs one too
  EXPECT_EQ(tape.size(), 1u);
  EXPECT_TRUE(s->requires_grad);
  tape.backward(s);
  EXPECT_EQ(w->grad.to_vector(), (std::vector<float>{2.0f, 4.0f}));
  EXPECT_FALSE(frozen->grad.defined());  // never allocated
  EXPECT_FALSE(y->grad.defined());
}

TEST(Tape, DisabledTapeRecordsNothing) {
  Tape tape;
  tape.set_enabled(false);
  Var x = make_var(Tensor(Shape{2}, {1.0f, 2.0f}), true);
  Var y = scale_op(tape, x, 2.0f);
  EXPECT_EQ(tape.size(), 0u);
  EXPECT_EQ(y->value.to_vector(), (std::vector<float>{2.0f, 4.0f}));  // the forward still runs
}

TEST(Tape, GradientOfAnIntermediateVarAndBranchesOffThePathAreSkipped) {
  // As Grad-CAM does: the prefix runs unrecorded, the intermediate becomes a leaf that requires a gradient.
  Tape tape;
  Var image = make_var(Tensor(Shape{2}, {1.0f, 3.0f}));
  Var feature = scale_op(tape, image, 2.0f);  // not recorded (image needs no gradient)
  feature->requires_grad = true;
  std::vector<std::string> order;
  Var off_path = scale_op(tape, feature, 5.0f, &order, "off_path");  // recorded but does not reach the root
  Var score = dot_op(tape, feature, feature);  // sum(feature^2): d/dfeature = 2 * feature
  tape.backward(score);
  EXPECT_EQ(feature->grad.to_vector(), (std::vector<float>{4.0f, 12.0f}));
  EXPECT_TRUE(order.empty()) << "a node whose output got no gradient must not run";
  EXPECT_FALSE(off_path->grad.defined());
}

TEST(Tape, SeedsAndTheirShapes) {
  Tape tape;
  Var x = make_var(Tensor(Shape{3}, {1.0f, 2.0f, 3.0f}), true);
  Var y = scale_op(tape, x, 2.0f);
  EXPECT_THROW(tape.backward(y), std::invalid_argument);  // a non-scalar root needs an explicit seed
  EXPECT_THROW(tape.backward(y, Tensor(Shape{2})), std::invalid_argument);
  tape.backward(y, Tensor(Shape{3}, {1.0f, 0.0f, -1.0f}));  // a one-hot-like seed selects outputs
  EXPECT_EQ(x->grad.to_vector(), (std::vector<float>{2.0f, 0.0f, -2.0f}));
}

TEST(Tape, ZeroGradKeepsTheBuffersAndClearRemovesTheNodes) {
  Tape tape;
  Var x = make_var(Tensor(Shape{2}, {1.0f, 2.0f}), true);
  tape.backward(dot_op(tape, x, x));
  const float* buffer = x->grad.data();
  zero_grad({x});
  EXPECT_EQ(x->grad.data(), buffer);  // no reallocation in steady-state training
  EXPECT_EQ(x->grad.to_vector(), (std::vector<float>{0.0f, 0.0f}));
  tape.clear();
  EXPECT_EQ(tape.size(), 0u);
  // Without zero_grad, a second backward accumulates onto the first.
  tape.backward(dot_op(tape, x, x));
  tape.clear();  // (a node whose output still holds a gradient would run again: clear between steps)
  tape.backward(dot_op(tape, x, x));
  EXPECT_EQ(x->grad.to_vector(), (std::vector<float>{2.0f + 2.0f, 4.0f + 4.0f}));
}

TEST(Tape, ProfileCountsCallsPerOp) {
  Tape tape;
  OpProfile profile;
  tape.set_profile(&profile);
  profile.start();
  Var x = make_var(Tensor(Shape{2}, {1.0f, 2.0f}), true);
  Var s = dot_op(tape, scale_op(tape, scale_op(tape, x, 2.0f), 3.0f), x);
  tape.backward(s);
  EXPECT_EQ(profile.calls.at("scale"), 2);
  EXPECT_EQ(profile.calls.at("dot"), 1);
  EXPECT_GE(profile.forward_seconds.at("dot"), 0.0);
  EXPECT_EQ(profile.backward_seconds.count("scale"), 1u);
}

}  // namespace
}  // namespace mriscan
