// Example: training a tiny network with the engine's tape autograd, no images involved.
//
// Two interleaved spirals of 2-D points, one class each, are not linearly separable; a two-layer network
//   x (N, 2) -> Linear(2, 64) -> ReLU6 -> Linear(64, 2) -> softmax cross-entropy
// learns to separate them. Each step: clear the tape, zero the gradients, run the forward (every layer appends one
// node to the tape), `tape.backward(loss)` (runs the nodes in reverse), then `optimizer.step()` (Adam).
// The program prints the loss every 100 steps and fails (exit 1) unless the training accuracy reaches 95%.
//
// Read next: engine/tape.h (Var, Tape, zero_grad), layers/linear.h and layers/linear.cpp (a forward that records
// its backward), layers/relu6.h, layers/softmax_cross_entropy.h, optim/adam.h and optim/optimizer.h.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "engine/tape.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/relu6.h"
#include "layers/softmax_cross_entropy.h"
#include "optim/adam.h"

using namespace mriscan;

int main() {
  // The data: 200 points per spiral, with a little noise; a fixed seed makes every run identical.
  const int per_class = 200, n = 2 * per_class;
  std::mt19937 rng(42);
  std::normal_distribution<float> noise(0.0f, 0.02f);
  Tensor points(Shape{n, 2});  // (N, 2)
  std::vector<int> labels(n);  // (N), 0 or 1
  for (int i = 0; i < n; ++i) {
    const int label = i % 2;
    const float t = float(i / 2) / per_class;  // 0 .. 1 along the spiral, which turns 1.5 times
    const float angle = 3.0f * 3.14159265f * t + label * 3.14159265f;  // spiral 1 is spiral 0 turned by pi
    points[2 * i + 0] = t * std::cos(angle) + noise(rng);
    points[2 * i + 1] = t * std::sin(angle) + noise(rng);
    labels[i] = label;
  }
  Var x = make_var(points);  // the input needs no gradient

  // The network. Linear starts with N(0, 0.01) weights, torchvision's init for MobileNetV2's classifier head. The
  // hidden layer gets He initialisation instead, N(0, sqrt(2 / fan_in)) = N(0, 1) for 2 inputs, which suits a layer
  // followed by a ReLU: with the tiny default weights this network stalls near 76% accuracy.
  Linear hidden(2, 64, rng), output(64, 2, rng);
  fill_normal(hidden.weight()->value, 1.0f, rng);  // (2, 64), engine layout (in, out)
  ReLU6 relu;
  std::vector<NamedParameter> params;
  hidden.collect_parameters("hidden.", params);
  output.collect_parameters("output.", params);
  std::vector<Var> param_vars;
  for (const NamedParameter& p : params) param_vars.push_back(p.var);
  Adam optimizer(params, {.learning_rate = 0.02f});

  Tape tape;
  Tensor probs;  // (N, 2) softmax probabilities, written by the loss
  float loss_value = 0.0f;
  for (int step = 0; step <= 1000; ++step) {
    tape.clear();
    zero_grad(param_vars);
    Var h = relu.forward(tape, hidden.forward(tape, x));  // (N, 64)
    Var logits = output.forward(tape, h);                 // (N, 2)
    Var loss = softmax_cross_entropy(tape, logits, labels, 0.0f, &probs);  // shape (): the mean over N
    loss_value = loss->value[0];
    tape.backward(loss);  // fills param->grad for every parameter
    optimizer.step();
    if (step % 100 == 0) std::printf("step %4d  loss %.4f  (%zu ops on the tape)\n", step, loss_value, tape.size());
  }

  // Accuracy of the last forward pass: the predicted class is the larger probability.
  int correct = 0;
  for (int i = 0; i < n; ++i) correct += (probs[2 * i + 1] > probs[2 * i + 0]) == (labels[i] == 1);
  const double accuracy = double(correct) / n;
  std::printf("training accuracy %.1f%% (%d of %d points)\n", 100.0 * accuracy, correct, n);
  if (accuracy < 0.95) {
    std::printf("FAILED: expected at least 95%%\n");
    return 1;
  }
  return 0;
}
