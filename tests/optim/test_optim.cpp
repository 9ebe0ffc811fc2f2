// Tests for the optimizers (SGD, Adam, AdamW), the training-control state machines (ReduceLROnPlateau,
// EarlyStopping) and BestCheckpoint. Expected numbers are computed by hand in the comments (and agree with
// torch.optim 1.13 / tf.keras semantics); the code under test never computes its own expectations.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "optim/adam.h"
#include "optim/checkpoint.h"
#include "optim/early_stopping.h"
#include "optim/reduce_lr_on_plateau.h"
#include "optim/sgd.h"
#include "tests/support/temp_dir.h"

namespace mriscan {
namespace {

// One 2-element parameter p = [1, -2] with a trainable Var.
std::vector<NamedParameter> one_param(std::vector<float> value = {1.0f, -2.0f}) {
  return {{"w", make_var(Tensor(Shape{2}, value), /*requires_grad=*/true)}};
}

// Sets the gradient to g (scripted, independent of p, so the sequences can be worked out by hand) and steps.
void step_with(Optimizer& opt, const std::vector<float>& g) {
  for (const NamedParameter& p : opt.parameters()) p.var->grad = Tensor(p.var->value.shape(), g);
  opt.step();
}

void expect_param(const Optimizer& opt, float p0, float p1, float tol = 1e-6f) {
  const Tensor& p = opt.parameters()[0].var->value;
  EXPECT_NEAR(p[0], p0, tol);
  EXPECT_NEAR(p[1], p1, tol);
}

// ---------------------------------------------------------------------------------------------------------------
// SGD

TEST(OptimSgd, MomentumHandComputed) {
  // lr 0.1, momentum 0.9, p0 = [1, -2]
  Sgd opt(one_param(), {.learning_rate = 0.1f, .momentum = 0.9f});
  // step 1, g = [1, 2]:  b = g = [1, 2];             p = [1 - 0.1, -2 - 0.2]          = [0.9, -2.2]
  step_with(opt, {1.0f, 2.0f});
  expect_param(opt, 0.9f, -2.2f);
  // step 2, g = [1, -1]: b = 0.9*[1, 2] + g = [1.9, 0.8];  p = [0.9 - 0.19, -2.2 - 0.08] = [0.71, -2.28]
  step_with(opt, {1.0f, -1.0f});
  expect_param(opt, 0.71f, -2.28f);
  // step 3, g = [0, 0]:  b = 0.9*[1.9, 0.8] = [1.71, 0.72]; p = [0.71 - 0.171, -2.28 - 0.072] = [0.539, -2.352]
  step_with(opt, {0.0f, 0.0f});
  expect_param(opt, 0.539f, -2.352f);
  EXPECT_EQ(opt.step_count(), 3);
}

TEST(OptimSgd, NesterovWithWeightDecayHandComputed) {
  // lr 0.1, momentum 0.9, wd 0.1, nesterov, p0 = [1, -2]
  Sgd opt(one_param(), {.learning_rate = 0.1f, .momentum = 0.9f, .weight_decay = 0.1f, .nesterov = true});
  // step 1, grad [1, 2]: g = grad + 0.1 p = [1.1, 1.8]; b = g; d = g + 0.9 b = [2.09, 3.42]
  //                      p = [1 - 0.209, -2 - 0.342] = [0.791, -2.342]
  step_with(opt, {1.0f, 2.0f});
  expect_param(opt, 0.791f, -2.342f);
  // step 2, grad [1, -1]: g = [1.0791, -1.2342]; b = 0.9 [1.1, 1.8] + g = [2.0691, 0.3858]
  //                       d = g + 0.9 b = [2.94129, -0.88698]; p = [0.791 - 0.294129, -2.342 + 0.088698]
  step_with(opt, {1.0f, -1.0f});
  expect_param(opt, 0.496871f, -2.253302f);
}

TEST(OptimSgd, NoMomentumKeepsNoState) {
  Sgd opt(one_param(), {.learning_rate = 0.5f});
  step_with(opt, {1.0f, 2.0f});  // p = [1 - 0.5, -2 - 1] = [0.5, -3]
  expect_param(opt, 0.5f, -3.0f);
  EXPECT_TRUE(opt.state().tensors.empty());
}

TEST(OptimSgd, RejectsBadOptions) {
  EXPECT_THROW(Sgd(one_param(), {.learning_rate = 0.1f, .momentum = -0.5f}), std::invalid_argument);
  EXPECT_THROW(Sgd(one_param(), {.learning_rate = 0.1f, .nesterov = true}), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------------------------
// Adam / AdamW (lr 0.1, beta1 0.9, beta2 0.999, eps 1e-8 throughout)

TEST(OptimAdam, HandComputedWithBiasCorrection) {
  Adam opt(one_param(), {.learning_rate = 0.1f});
  // step 1, g = [1, 2]: m = 0.1 g = [0.1, 0.2], v = 0.001 g^2 = [0.001, 0.004]
  //   bc1 = 0.1, bc2 = 0.001 -> m_hat = g, v_hat = g^2, update = lr * g / |g| = [0.1, 0.1]
  //   p = [0.9, -2.1]   (without bias correction it would be lr * 0.1 g / sqrt(0.001 g^2) = 0.316 per element)
  step_with(opt, {1.0f, 2.0f});
  expect_param(opt, 0.9f, -2.1f);
  // step 2, g = [1, -1]: m = 0.9 [0.1, 0.2] + 0.1 [1, -1] = [0.19, 0.08]
  //   v = 0.999 [0.001, 0.004] + 0.001 [1, 1] = [0.001999, 0.004996]
  //   bc1 = 1 - 0.81 = 0.19, bc2 = 1 - 0.998001 = 0.001999
  //   m_hat = [1, 0.42105263], v_hat = [1, 2.49924962], sqrt(v_hat) = [1, 1.58090152]
  //   update = 0.1 [1, 0.26633657] -> p = [0.8, -2.12663366]
  step_with(opt, {1.0f, -1.0f});
  expect_param(opt, 0.8f, -2.1266337f);
  // step 3, g = [0, 0]: m = [0.171, 0.072], v = [0.001997001, 0.004991004]
  //   bc1 = 0.271, bc2 = 0.002997001 -> m_hat = [0.63099631, 0.26568266], sqrt(v_hat) = [0.81629, 1.29048]
  //   update = 0.1 [0.77300898, 0.20587992] -> p = [0.72269910, -2.14722157]
  step_with(opt, {0.0f, 0.0f});
  expect_param(opt, 0.7226991f, -2.1472216f);
}

TEST(OptimAdam, L2WeightDecayGoesThroughTheMoments) {
  Adam opt(one_param(), {.learning_rate = 0.1f, .weight_decay = 0.1f});
  // step 1: g = grad + 0.1 p = [1.1, 1.8]; first Adam step moves each element by lr * sign(g) -> [0.9, -2.1]
  step_with(opt, {1.0f, 2.0f});
  expect_param(opt, 0.9f, -2.1f);
  // step 2: g = [1, -1] + 0.1 [0.9, -2.1] = [1.09, -1.21]
  //   m = 0.9 [0.11, 0.18] + 0.1 g = [0.208, 0.041]; v = 0.999 [0.00121, 0.00324] + 0.001 g^2 = [0.00239689, 0.00470086]
  //   m_hat = m / 0.19 = [1.0947368, 0.2157895]; v_hat = v / 0.001999 = [1.1990445, 2.3516058]
  //   m_hat / sqrt(v_hat) = [0.9997515, 0.1407175] -> p = [0.9 - 0.09997515, -2.1 - 0.01407175]
  step_with(opt, {1.0f, -1.0f});
  expect_param(opt, 0.80002485f, -2.11407175f, 2e-6f);
}

TEST(OptimAdam, DecoupledWeightDecayShrinksTheWeight) {
  Adam opt(one_param(), {.learning_rate = 0.1f, .weight_decay = 0.1f, .decoupled_weight_decay = true});
  // step 1: p *= 1 - lr*wd = 0.99 -> [0.99, -1.98]; then the plain Adam step [-0.1, -0.1] -> [0.89, -2.08]
  step_with(opt, {1.0f, 2.0f});
  expect_param(opt, 0.89f, -2.08f);
  // step 2: p *= 0.99 -> [0.8811, -2.0592]; the moments see only the raw gradient, so the update is plain
  //   Adam's step 2: [0.1, 0.026633657] in the direction of m = [0.19, 0.08] -> [0.7811, -2.08583366]
  step_with(opt, {1.0f, -1.0f});
  expect_param(opt, 0.7811f, -2.0858337f);
}

TEST(OptimAdam, FrozenAndGradlessParametersUntouched) {
  std::vector<NamedParameter> params = {
      {"trained", make_var(Tensor(Shape{2}, {1.0f, -2.0f}), true)},
      {"frozen", make_var(Tensor(Shape{2}, {3.0f, 4.0f}), false)},
      {"unused", make_var(Tensor(Shape{2}, {5.0f, 6.0f}), true)},
  };
  params[0].var->grad = Tensor(Shape{2}, {1.0f, 1.0f});
  params[1].var->grad = Tensor(Shape{2}, {1.0f, 1.0f});  // a stale gradient must not move a frozen weight
  // params[2] has no gradient at all (not reached by this forward pass)
  Adam opt(params, {.learning_rate = 0.1f, .weight_decay = 0.5f, .decoupled_weight_decay = true});
  opt.step();
  EXPECT_NE(params[0].var->value[0], 1.0f);
  EXPECT_EQ(params[1].var->value.to_vector(), (std::vector<float>{3.0f, 4.0f}));
  EXPECT_EQ(params[2].var->value.to_vector(), (std::vector<float>{5.0f, 6.0f}));  // not even weight decay
  // No state for parameters that were never updated.
  const OptimizerState state = opt.state();
  EXPECT_EQ(state.tensors.size(), 3u);  // trained.{exp_avg, exp_avg_sq, step}
  EXPECT_TRUE(state.tensors.count("trained.exp_avg"));
  EXPECT_FALSE(state.tensors.count("frozen.exp_avg"));
  EXPECT_FALSE(state.tensors.count("unused.exp_avg"));
}

TEST(OptimAdam, UnfrozenParameterStartsItsOwnBiasCorrection) {
  // A parameter that starts training late gets a first step of exactly lr * sign(g), as in PyTorch (per-parameter
  // step counters); a global counter would give bias corrections of step 3 instead.
  std::vector<NamedParameter> params = {{"a", make_var(Tensor(Shape{1}, {0.0f}), true)},
                                        {"b", make_var(Tensor(Shape{1}, {0.0f}), false)}};
  Adam opt(params, {.learning_rate = 0.1f});
  for (int i = 0; i < 2; ++i) {
    params[0].var->grad = Tensor(Shape{1}, {1.0f});
    opt.step();
  }
  params[1].var->requires_grad = true;
  params[1].var->grad = Tensor(Shape{1}, {2.0f});
  opt.step();
  EXPECT_NEAR(params[1].var->value[0], -0.1f, 1e-6f);
  EXPECT_EQ(opt.state().tensors.at("b.step")[0], 1.0f);
  EXPECT_EQ(opt.state().tensors.at("a.step")[0], 3.0f);
}

// Runs `steps` Adam/SGD steps with a gradient that depends on the parameter (g = p - target), so any state
// mismatch after a resume shows up in the trajectory.
void run_quadratic(Optimizer& opt, int steps) {
  for (int s = 0; s < steps; ++s) {
    for (const NamedParameter& p : opt.parameters()) {
      Tensor g(p.var->value.shape());
      for (int64_t i = 0; i < g.numel(); ++i) g[i] = p.var->value[i] - 0.25f * static_cast<float>(i + 1);
      p.var->grad = g;
    }
    opt.step();
  }
}

std::vector<NamedParameter> clone_params(const std::vector<NamedParameter>& params) {
  std::vector<NamedParameter> out;
  for (const NamedParameter& p : params) out.push_back({p.name, make_var(p.var->value.clone(), p.var->requires_grad)});
  return out;
}

template <typename Opt, typename Options>
void expect_resume_identical(const Options& options) {
  std::vector<NamedParameter> params = {{"w", make_var(Tensor(Shape{2, 2}, {1.0f, -2.0f, 0.5f, 3.0f}), true)},
                                        {"b", make_var(Tensor(Shape{3}, {0.1f, 0.2f, -0.3f}), true)}};
  Opt reference(params, options);
  run_quadratic(reference, 3);
  // Snapshot after 3 steps: weights and optimizer state.
  std::vector<NamedParameter> resumed_params = clone_params(params);
  OptimizerState snapshot = reference.state();
  EXPECT_EQ(snapshot.step_count, 3);
  run_quadratic(reference, 4);

  // A fresh optimizer (different lr in the constructor on purpose) loads the snapshot and continues.
  Options other = options;
  other.learning_rate = 123.0f;
  Opt resumed(resumed_params, other);
  resumed.load_state(snapshot);
  EXPECT_EQ(resumed.learning_rate(), options.learning_rate);
  run_quadratic(resumed, 4);
  for (size_t k = 0; k < params.size(); ++k)
    EXPECT_EQ(params[k].var->value.to_vector(), resumed_params[k].var->value.to_vector()) << params[k].name;
  EXPECT_EQ(resumed.step_count(), 7);
}

TEST(OptimState, AdamResumesBitIdentically) {
  expect_resume_identical<Adam>(AdamOptions{.learning_rate = 0.05f, .weight_decay = 0.01f, .decoupled_weight_decay = true});
}

TEST(OptimState, SgdResumesBitIdentically) {
  expect_resume_identical<Sgd>(SgdOptions{.learning_rate = 0.05f, .momentum = 0.9f, .weight_decay = 0.01f});
}

TEST(OptimState, WithoutStateTheTrajectoryDiffers) {
  // Guards the test above: restoring weights only (fresh moments) must give a different trajectory.
  std::vector<NamedParameter> a = one_param(), b = clone_params(a);
  Adam with_state(a, {.learning_rate = 0.1f});
  run_quadratic(with_state, 5);
  Adam fresh(b, {.learning_rate = 0.1f});
  run_quadratic(fresh, 2);
  Adam restarted(b, {.learning_rate = 0.1f});
  run_quadratic(restarted, 3);
  EXPECT_NE(a[0].var->value.to_vector(), b[0].var->value.to_vector());
}

TEST(OptimState, LoadStateRejectsUnknownEntriesAndWrongShapes) {
  Adam opt(one_param(), {.learning_rate = 0.1f});
  OptimizerState bad;
  bad.tensors["nope.exp_avg"] = Tensor(Shape{2});
  try {
    opt.load_state(bad);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.exp_avg"), std::string::npos) << e.what();
  }
  bad.tensors.clear();
  bad.tensors["w.exp_avg"] = Tensor(Shape{3});
  try {
    opt.load_state(bad);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("(3)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(2)"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// ReduceLROnPlateau (Keras semantics)

// factor 0.5, patience 2, cooldown 1, min_lr 0.02, min_delta 0.01, starting lr 0.1.
const ReduceLROnPlateauOptions kPlateauOptions{.factor = 0.5f, .patience = 2, .cooldown = 1, .min_lr = 0.02f, .min_delta = 0.01f};
const std::vector<float> kPlateauLosses = {1.0f, 0.995f, 0.995f, 0.999f, 0.999f, 0.5f, 0.6f, 0.6f, 0.6f, 0.6f, 0.6f};
// epoch 0: best 1.0                                              lr 0.1
// epoch 1: 0.995 is not < 1.0 - 0.01 (min_delta): wait 1         lr 0.1
// epoch 2: wait 2 = patience: reduce, cooldown 1, wait 0          -> 0.05
// epoch 3: cooldown ends this epoch (counter 1 -> 0), so the epoch already counts: wait 1   0.05
// epoch 4: wait 2: reduce                                         -> 0.025
// epoch 5: 0.5 improves: best 0.5, wait 0                          0.025
// epoch 6: wait 1                                                 0.025
// epoch 7: wait 2: reduce to max(0.0125, min_lr 0.02)             -> 0.02
// epoch 8: cooldown ends, wait 1                                  0.02
// epoch 9, 10: wait >= patience but lr is already min_lr: no change  0.02
const std::vector<float> kPlateauExpectedLr = {0.1f, 0.1f, 0.05f, 0.05f, 0.025f, 0.025f, 0.025f, 0.02f, 0.02f, 0.02f, 0.02f};

TEST(OptimPlateau, ScriptedSequenceWithCooldownMinLrAndMinDelta) {
  ReduceLROnPlateau plateau(kPlateauOptions);
  float lr = 0.1f;
  for (size_t epoch = 0; epoch < kPlateauLosses.size(); ++epoch) {
    lr = plateau.step(kPlateauLosses[epoch], lr);
    EXPECT_FLOAT_EQ(lr, kPlateauExpectedLr[epoch]) << "epoch " << epoch;
  }
  EXPECT_FLOAT_EQ(plateau.best(), 0.5f);
}

TEST(OptimPlateau, NoCooldownReducesEveryPatienceEpochs) {
  // patience 1, cooldown 0, min_delta 0: every non-improving epoch reduces: 1 -> 0.1 -> 0.01
  ReduceLROnPlateau plateau({.factor = 0.1f, .patience = 1, .cooldown = 0, .min_lr = 0.0f, .min_delta = 0.0f});
  float lr = 1.0f;
  lr = plateau.step(2.0f, lr);
  EXPECT_FLOAT_EQ(lr, 1.0f);
  lr = plateau.step(2.0f, lr);  // equal is not an improvement
  EXPECT_FLOAT_EQ(lr, 0.1f);
  lr = plateau.step(3.0f, lr);
  EXPECT_FLOAT_EQ(lr, 0.01f);
  lr = plateau.step(1.9f, lr);  // any strict improvement counts with min_delta 0
  EXPECT_FLOAT_EQ(lr, 0.01f);
}

TEST(OptimPlateau, JsonStateRoundTripResumesTheSequence) {
  for (size_t cut = 0; cut <= kPlateauLosses.size(); ++cut) {
    ReduceLROnPlateau first(kPlateauOptions);
    float lr = 0.1f;
    for (size_t e = 0; e < cut; ++e) lr = first.step(kPlateauLosses[e], lr);
    // Through text, as a checkpoint would store it (a fresh best of +inf must survive as null).
    nlohmann::json state = nlohmann::json::parse(first.state().dump());
    ReduceLROnPlateau second(kPlateauOptions);
    second.load_state(state);
    for (size_t e = cut; e < kPlateauLosses.size(); ++e) {
      lr = second.step(kPlateauLosses[e], lr);
      EXPECT_FLOAT_EQ(lr, kPlateauExpectedLr[e]) << "cut " << cut << " epoch " << e;
    }
  }
  ReduceLROnPlateau plateau(kPlateauOptions);
  EXPECT_THROW(plateau.load_state(nlohmann::json{{"best", 1.0}}), std::runtime_error);
}

// ---------------------------------------------------------------------------------------------------------------
// EarlyStopping (Keras semantics)

// patience 3, min_delta 0.01.
const std::vector<float> kStopLosses = {1.0f, 0.8f, 0.795f, 0.85f, 0.7f, 0.72f, 0.71f, 0.705f, 0.9f};
// epoch 0: best 1.0 | 1: 0.8 best | 2: 0.795 is not < 0.79: wait 1 | 3: wait 2 | 4: 0.7 best, wait 0
// 5: wait 1 | 6: wait 2 | 7: wait 3 = patience -> stop at epoch 7, best 0.7 at epoch 4
const std::vector<bool> kStopExpectedBest = {true, true, false, false, true, false, false, false};

TEST(OptimEarlyStopping, ScriptedSequenceStopsAtExpectedEpoch) {
  EarlyStopping stopper({.patience = 3, .min_delta = 0.01f, .restore_best = true});
  int stop_epoch = -1;
  for (size_t epoch = 0; epoch < kStopLosses.size(); ++epoch) {
    bool stop = stopper.step(kStopLosses[epoch]);
    EXPECT_EQ(stopper.is_best(), kStopExpectedBest[epoch]) << "epoch " << epoch;
    if (stop) {
      stop_epoch = static_cast<int>(epoch);
      break;
    }
  }
  EXPECT_EQ(stop_epoch, 7);
  EXPECT_EQ(stopper.stopped_epoch(), 7);
  EXPECT_FLOAT_EQ(stopper.best(), 0.7f);
  EXPECT_EQ(stopper.best_epoch(), 4);
  EXPECT_TRUE(stopper.restore_best());
}

TEST(OptimEarlyStopping, PatienceZeroNeverStopsOnFirstEpoch) {
  EarlyStopping stopper({.patience = 0});
  EXPECT_FALSE(stopper.step(1.0f));
  EXPECT_TRUE(stopper.step(1.0f));  // second epoch, no improvement
}

TEST(OptimEarlyStopping, JsonStateRoundTrip) {
  EarlyStopping first({.patience = 3, .min_delta = 0.01f});
  for (int e = 0; e < 6; ++e) ASSERT_FALSE(first.step(kStopLosses[e]));
  EarlyStopping second({.patience = 3, .min_delta = 0.01f});
  second.load_state(nlohmann::json::parse(first.state().dump()));
  EXPECT_EQ(second.best_epoch(), 4);
  EXPECT_EQ(second.wait(), 1);
  EXPECT_FALSE(second.step(kStopLosses[6]));
  EXPECT_TRUE(second.step(kStopLosses[7]));
  EXPECT_EQ(second.stopped_epoch(), 7);
  // A fresh state (best = +inf) survives the trip through JSON's null.
  EarlyStopping fresh({.patience = 3});
  EarlyStopping fresh_copy({.patience = 3});
  fresh_copy.load_state(nlohmann::json::parse(fresh.state().dump()));
  EXPECT_TRUE(std::isinf(fresh_copy.best()));
  EXPECT_THROW(fresh_copy.load_state(nlohmann::json::object()), std::runtime_error);
}

// ---------------------------------------------------------------------------------------------------------------
// BestCheckpoint

using OptimCheckpoint = TempDirTest;

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(OptimCheckpoint, SavesOnlyNewBestsThroughCallback) {
  const std::string path = (dir_ / "best.txt").string();
  std::vector<std::string> written_paths;
  BestCheckpoint checkpoint(path, [&](const std::string& tmp_path, int epoch) {
    written_paths.push_back(tmp_path);
    std::ofstream(tmp_path) << "epoch " << epoch;
  }, /*min_delta=*/0.01f);
  const std::vector<float> losses = {1.0f, 0.9f, 0.895f, 0.95f, 0.8f};
  const std::vector<bool> expected_saved = {true, true, false, false, true};  // 0.895 misses by min_delta
  for (int e = 0; e < 5; ++e) EXPECT_EQ(checkpoint.observe(losses[e], e), expected_saved[e]) << "epoch " << e;
  EXPECT_EQ(written_paths.size(), 3u);
  // The callback writes a temporary next to the file; the rename publishes it.
  EXPECT_EQ(written_paths[0].rfind(path + ".tmp.", 0), 0u) << written_paths[0];
  EXPECT_EQ(read_text(path), "epoch 4");
  EXPECT_FALSE(has_temporary_of(path));
  EXPECT_EQ(checkpoint.best_epoch(), 4);
  EXPECT_FLOAT_EQ(checkpoint.best(), 0.8f);
}

TEST_F(OptimCheckpoint, FailedWriteKeepsPreviousFileAndBest) {
  const std::string path = (dir_ / "best.txt").string();
  bool fail = false;
  BestCheckpoint checkpoint(path, [&](const std::string& tmp_path, int) {
    std::ofstream(tmp_path) << (fail ? "half-written" : "complete");
    if (fail) throw std::runtime_error("disk full (simulated)");
  });
  ASSERT_TRUE(checkpoint.observe(1.0f, 0));
  fail = true;
  EXPECT_THROW(checkpoint.observe(0.5f, 1), std::runtime_error);
  EXPECT_EQ(read_text(path), "complete");  // still the epoch-0 file
  EXPECT_FALSE(has_temporary_of(path));
  EXPECT_FLOAT_EQ(checkpoint.best(), 1.0f);
  EXPECT_EQ(checkpoint.best_epoch(), 0);
  // The next best is saved once the disk works again.
  fail = false;
  EXPECT_TRUE(checkpoint.observe(0.6f, 2));
}

TEST_F(OptimCheckpoint, StateRoundTripKeepsTheBest) {
  const std::string path = (dir_ / "best.txt").string();
  BestCheckpoint checkpoint(path, [](const std::string& tmp_path, int) { std::ofstream(tmp_path) << "weights"; });
  ASSERT_TRUE(checkpoint.observe(0.75f, 3));
  EXPECT_FALSE(checkpoint.observe(0.9f, 4));
  BestCheckpoint other(path, [](const std::string&, int) {});
  other.load_state(nlohmann::json::parse(checkpoint.state().dump()));
  EXPECT_EQ(other.best_epoch(), 3);
  EXPECT_FALSE(other.is_improvement(0.75f));
  EXPECT_TRUE(other.is_improvement(0.7f));
  EXPECT_THROW(other.load_state(nlohmann::json::object()), std::runtime_error);
}

TEST_F(OptimCheckpoint, TrainingStateFileResumesExactly) {
  std::vector<NamedParameter> params = {{"w", make_var(Tensor(Shape{2, 2}, {1.0f, -2.0f, 0.5f, 3.0f}), true)}};
  Tensor running_mean(Shape{2}, {0.5f, -0.5f});
  Adam reference(params, {.learning_rate = 0.03f});
  run_quadratic(reference, 2);
  const std::string path = (dir_ / "state.safetensors").string();
  save_training_state(path, params, {{"bn.running_mean", running_mean}}, reference.state(), {{"epoch", 2}});
  const std::vector<float> saved_weights = params[0].var->value.to_vector();
  run_quadratic(reference, 3);

  std::vector<NamedParameter> resumed_params = {{"w", make_var(Tensor(Shape{2, 2}), true)}};
  Tensor resumed_mean(Shape{2});
  TrainingState state = load_training_state(path, resumed_params, {{"bn.running_mean", resumed_mean}});
  EXPECT_EQ(resumed_params[0].var->value.to_vector(), saved_weights);
  EXPECT_EQ(resumed_mean.to_vector(), running_mean.to_vector());
  EXPECT_EQ(state.trainer_state.at("epoch"), 2);
  Adam resumed(resumed_params, {.learning_rate = 1.0f});
  resumed.load_state(state.optimizer);
  EXPECT_EQ(resumed.learning_rate(), 0.03f);
  EXPECT_EQ(resumed.step_count(), 2);
  run_quadratic(resumed, 3);
  EXPECT_EQ(resumed_params[0].var->value.to_vector(), params[0].var->value.to_vector());
}

TEST_F(OptimCheckpoint, TrainingStateOfAnotherModelChangesNothing) {
  std::vector<NamedParameter> params = {{"w", make_var(Tensor(Shape{2, 2}, {1, 2, 3, 4}), true)}};
  const std::string path = (dir_ / "state.safetensors").string();
  save_training_state(path, params, {}, OptimizerState{}, nlohmann::json::object());

  Var wider = make_var(Tensor(Shape{2, 3}, {9, 9, 9, 9, 9, 9}), true);
  Var other = make_var(Tensor(Shape{2, 2}, {7, 7, 7, 7}), true);
  // A missing tensor is named, and a parameter listed before it is not touched.
  try {
    load_training_state(path, {{"w", other}, {"v", other}}, {});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("param.v is missing"), std::string::npos) << error.what();
  }
  EXPECT_EQ(other->value.to_vector(), (std::vector<float>{7, 7, 7, 7}));
  EXPECT_THROW(load_training_state(path, {{"w", wider}}, {}), std::runtime_error);  // (2, 3) vs (2, 2)
  EXPECT_EQ(wider->value.to_vector(), (std::vector<float>(6, 9.0f)));
  // A truncated file is refused.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 4);
  EXPECT_THROW(load_training_state(path, params, {}), std::runtime_error);
}

}  // namespace
}  // namespace mriscan
