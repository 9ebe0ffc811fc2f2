// Tests for engine/tape.h on its own, with hand-written ops (no layer involved): reverse-order backward,
// accumulation on fan-out, what is and is not recorded, gradients of intermediate Vars, the release of each op output's
// gradient, seeds, zero_grad, and the op profile. The layers' own gradients are checked elsewhere (tests/layers/,
// finite differences).
#include <gtest/gtest.h>

#include <memory>
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
  Var score = dot_op(tape, feature, feature);                        // sum(feature^2): d/dfeature = 2 * feature
  tape.backward(score);
  EXPECT_EQ(feature->grad.to_vector(), (std::vector<float>{4.0f, 12.0f}));
  EXPECT_TRUE(order.empty()) << "a node whose output got no gradient must not run";
  EXPECT_FALSE(off_path->grad.defined());
}

TEST(Tape, ReleasesEachOpOutputsGradientOnceItsOpHasRun) {
  // A chain x -> h1 -> h2 -> h3 -> s. When the node producing h_k has run, h_k's gradient is complete and consumed:
  // it must be gone before the next node (the producer of h_{k-1}) runs. Leaves keep theirs; keep_grad keeps one.
  Tape tape;
  Var x = make_var(Tensor(Shape{2}, {1.0f, 2.0f}), true);
  Var h1 = scale_op(tape, x, 2.0f);
  Var h2 = scale_op(tape, h1, 3.0f);
  h2->keep_grad = true;  // read after backward, as an intermediate Grad-CAM-like target would be
  Var h3 = scale_op(tape, h2, 0.5f);
  Var s = dot_op(tape, h3, h3);
  std::vector<std::vector<bool>> alive;  // after each node: which of h1, h2, h3 still hold a gradient
  tape.set_after_backward_node([&](const TapeNode&) {
    alive.push_back({h1->grad.defined(), h2->grad.defined(), h3->grad.defined()});
  });
  tape.backward(s);
  // Hook calls run before the release of that node's own output: dot (s) -> scale h3 -> scale h2 -> scale h1.
  ASSERT_EQ(alive.size(), 4u);
  EXPECT_EQ(alive[0], (std::vector<bool>{false, false, true}));  // dot wrote dh3
  EXPECT_EQ(alive[1], (std::vector<bool>{false, true, true}));   // h3's producer wrote dh2; dh3 is released next
  EXPECT_EQ(alive[2], (std::vector<bool>{true, true, false}));   // dh3 gone; dh1 written
  EXPECT_EQ(alive[3], (std::vector<bool>{true, true, false}));   // h1's producer wrote dx
  EXPECT_FALSE(h1->grad.defined());
  EXPECT_FALSE(h3->grad.defined());
  EXPECT_FALSE(s->grad.defined());
  // s = sum((0.5 * 3 * 2 x)^2) = 9 sum(x^2): ds/dh2 = 2 * 0.25 * h2 = 0.5 h2, ds/dx = 18 x.
  EXPECT_EQ(h2->grad.to_vector(), (std::vector<float>{0.5f * 6.0f, 0.5f * 12.0f}));
  EXPECT_EQ(x->grad.to_vector(), (std::vector<float>{18.0f, 36.0f}));
}

TEST(Tape, ActivationsAreFreedOnceTheirProducerAndConsumersHaveRun) {
  // x -> h1 -> h2 -> s with the caller holding no reference to h1 or h2: each goes when backward has passed it.
  Tape tape;
  Var x = make_var(Tensor(Shape{2}, {1.0f, 2.0f}), true);
  Var h1 = scale_op(tape, x, 2.0f);
  Var h2 = scale_op(tape, h1, 3.0f);
  Var s = dot_op(tape, h2, h2);
  const std::weak_ptr<Variable> weak_h1 = h1, weak_h2 = h2;
  h1.reset();
  h2.reset();
  std::vector<std::vector<bool>> freed;  // after each node: h1, h2 freed?
  tape.set_after_backward_node([&](const TapeNode&) { freed.push_back({weak_h1.expired(), weak_h2.expired()}); });
  tape.backward(s);
  ASSERT_EQ(freed.size(), 3u);                             // each hook runs before its own node is released
  EXPECT_EQ(freed[0], (std::vector<bool>{false, false}));  // dot ran: h2 is still its producer's output
  EXPECT_EQ(freed[1], (std::vector<bool>{false, false}));  // h2's producer ran (and is released next)
  EXPECT_EQ(freed[2], (std::vector<bool>{false, true}));   // h2 gone; h1's producer ran
  EXPECT_TRUE(weak_h1.expired());
  EXPECT_EQ(x->grad.to_vector(), (std::vector<float>{72.0f, 144.0f}));  // s = 36 sum(x^2)
  EXPECT_EQ(tape.nodes().back().op_name, "dot");                        // the spent nodes keep their names
  tape.backward(s);  // spent nodes are skipped: only the root's own seed, no second pass through them
  EXPECT_EQ(x->grad.to_vector(), (std::vector<float>{72.0f, 144.0f}));
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
  tape.clear();  // (without it the earlier dot, whose output's gradient was released, would be skipped anyway)
  tape.backward(dot_op(tape, x, x));
  EXPECT_EQ(x->grad.to_vector(), (std::vector<float>{2.0f + 2.0f, 4.0f + 4.0f}));
}

// grad_target: the first gradient to reach a variable gets a fresh buffer to store into; later ones add.
TEST(Tape, GradTargetIsFirstOnceThenTheBufferToAddInto) {
  Var x = make_var(Tensor(Shape{3}), /*requires_grad=*/true);
  const Variable::GradTarget first = x->grad_target();
  EXPECT_TRUE(first.first);
  ASSERT_TRUE(x->grad.defined());
  EXPECT_EQ(first.data, x->grad.data());
  for (int i = 0; i < 3; ++i) first.data[i] = float(i);  // what a kernel storing the first gradient does
  const Variable::GradTarget second = x->grad_target();
  EXPECT_FALSE(second.first);
  EXPECT_EQ(second.data, first.data);
  EXPECT_EQ(x->grad[2], 2.0f);
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
