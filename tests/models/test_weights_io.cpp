// Tests for the PyTorch <-> engine weight layout conversions and whole-model save/load (models/weights_io.h).
// (The safetensors format itself: tests/io/test_safetensors.cpp.)
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "models/weights_io.h"
#include "tests/support/temp_dir.h"

namespace mriscan {
namespace {

using WeightsTest = TempDirTest;

// ---------------------------------------------------------------------------------------------------------------
// Layout conversions. File tensors hold their own flat index as value, so value v sits at file index v.

Tensor iota(const Shape& shape) {
  Tensor t(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(i);
  return t;
}

TEST(WeightsLayout, DenseConvHandPlaced) {
  // file (O=2, I=3, KH=2, KW=2) -> engine (KH, KW, I, O) = (2, 2, 3, 2)
  const Tensor file = iota(Shape{2, 3, 2, 2});
  const Tensor engine = to_engine_layout(file, Shape{2, 2, 3, 2}, "conv.weight");
  // file (o=1, i=2, kh=0, kw=1): ((1*3 + 2)*2 + 0)*2 + 1 = 21; engine (kh=0, kw=1, i=2, o=1): ((0*2+1)*3+2)*2+1 = 11
  EXPECT_EQ(engine[11], 21.0f);
  // file (o=0, i=1, kh=1, kw=0): ((0*3+1)*2+1)*2+0 = 6; engine (1, 0, 1, 0): ((1*2+0)*3+1)*2+0 = 14
  EXPECT_EQ(engine[14], 6.0f);
  EXPECT_EQ(engine[0], 0.0f);
  EXPECT_EQ(engine[23], 23.0f);  // last element of both: (o=1, i=2, kh=1, kw=1)
  EXPECT_EQ(file_shape_for(engine.shape(), ParamKind::kDenseConv), file.shape());
  EXPECT_EQ(to_file_layout(engine, ParamKind::kDenseConv).to_vector(), file.to_vector());
}

TEST(WeightsLayout, DepthwiseConvHandPlaced) {
  // file (C=3, 1, KH=2, KW=2) -> engine (KH, KW, C) = (2, 2, 3)
  const Tensor file = iota(Shape{3, 1, 2, 2});
  const Tensor engine = to_engine_layout(file, Shape{2, 2, 3}, "dw.weight");
  // file (c=2, kh=1, kw=0): (2*2+1)*2+0 = 10; engine (kh=1, kw=0, c=2): (1*2+0)*3+2 = 8
  EXPECT_EQ(engine[8], 10.0f);
  // file (c=1, kh=0, kw=1): 1*4 + 1 = 5; engine (0, 1, 1): (0*2+1)*3+1 = 4
  EXPECT_EQ(engine[4], 5.0f);
  EXPECT_EQ(to_file_layout(engine, ParamKind::kDepthwiseConv).shape(), file.shape());
  EXPECT_EQ(to_file_layout(engine, ParamKind::kDepthwiseConv).to_vector(), file.to_vector());
}

TEST(WeightsLayout, PointwiseAndLinearHandPlaced) {
  // pointwise: file (O=2, I=3, 1, 1) -> engine (I, O) = (3, 2); linear: file (out=2, in=3) -> engine (3, 2)
  const Tensor pointwise_file = iota(Shape{2, 3, 1, 1});
  const Tensor linear_file = iota(Shape{2, 3});
  for (const Tensor& file : {pointwise_file, linear_file}) {
    const Tensor engine = to_engine_layout(file, Shape{3, 2}, "w");
    // engine (i, o) = file (o, i): [[0, 3], [1, 4], [2, 5]]
    EXPECT_EQ(engine.to_vector(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  }
  const Tensor engine = to_engine_layout(pointwise_file, Shape{3, 2}, "w");
  EXPECT_EQ(to_file_layout(engine, ParamKind::kPointwiseConv).shape(), pointwise_file.shape());
  EXPECT_EQ(to_file_layout(engine, ParamKind::kPointwiseConv).to_vector(), pointwise_file.to_vector());
  EXPECT_EQ(to_file_layout(engine, ParamKind::kLinear).shape(), linear_file.shape());
  EXPECT_EQ(to_file_layout(engine, ParamKind::kLinear).to_vector(), linear_file.to_vector());
}

TEST(WeightsLayout, VectorsAndScalarsAsIs) {
  const Tensor bias = iota(Shape{5});
  EXPECT_EQ(to_engine_layout(bias, Shape{5}, "bias").to_vector(), bias.to_vector());
  EXPECT_EQ(to_engine_layout(Tensor(Shape{}, {3.0f}), Shape{}, "s")[0], 3.0f);
  EXPECT_EQ(to_file_layout(bias, ParamKind::kAsIs).to_vector(), bias.to_vector());
}

TEST(WeightsLayout, KindRuleForSaving) {
  EXPECT_EQ(param_kind_for(Shape{3, 3, 3, 32}, "features.0.0.weight"), ParamKind::kDenseConv);
  EXPECT_EQ(param_kind_for(Shape{3, 3, 32}, "features.1.conv.0.0.weight"), ParamKind::kDepthwiseConv);
  EXPECT_EQ(param_kind_for(Shape{32, 16}, "features.1.conv.1.weight"), ParamKind::kPointwiseConv);
  EXPECT_EQ(param_kind_for(Shape{1280, 4}, "classifier.1.weight"), ParamKind::kLinear);
  EXPECT_EQ(param_kind_for(Shape{4}, "classifier.1.bias"), ParamKind::kAsIs);
}

TEST(WeightsLayout, MismatchNamesTensorAndBothShapes) {
  try {
    to_engine_layout(iota(Shape{32, 3, 3, 3}), Shape{3, 3, 4, 32}, "features.0.0.weight");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("features.0.0.weight"), std::string::npos) << message;
    EXPECT_NE(message.find("(32, 3, 3, 3)"), std::string::npos) << message;
    EXPECT_NE(message.find("(3, 3, 4, 32)"), std::string::npos) << message;
  }
  // Rank combinations that mean nothing: a rank-3 file for a rank-2 engine tensor, a KxK file for a 1x1 one.
  EXPECT_THROW(to_engine_layout(iota(Shape{2, 3, 1}), Shape{3, 2}, "w"), std::runtime_error);
  EXPECT_THROW(to_engine_layout(iota(Shape{2, 3, 3, 3}), Shape{3, 2}, "w"), std::runtime_error);
  EXPECT_THROW(to_engine_layout(iota(Shape{4, 2, 3, 3}), Shape{3, 3, 4}, "dw"), std::runtime_error);  // I != 1
}

// ---------------------------------------------------------------------------------------------------------------
// save_parameters / load_parameters

struct TinyModel {
  std::vector<NamedParameter> params;
  std::vector<NamedBuffer> buffers;
};

// A miniature of the real naming: a stem conv, a depthwise, a pointwise, BN buffers, a linear classifier.
TinyModel tiny_model(float offset) {
  auto param = [&](const std::string& name, const Shape& shape) {
    Tensor t = iota(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t[i] += offset;
    return NamedParameter{name, make_var(t, true)};
  };
  TinyModel m;
  m.params = {param("features.0.0.weight", Shape{3, 3, 3, 4}), param("features.0.1.weight", Shape{4}),
              param("features.1.conv.0.0.weight", Shape{3, 3, 4}), param("features.1.conv.1.weight", Shape{4, 2}),
              param("classifier.1.weight", Shape{2, 5}), param("classifier.1.bias", Shape{5})};
  Tensor mean(Shape{4}, {0.1f + offset, 0.2f, 0.3f, 0.4f}), var(Shape{4}, {1.0f, 2.0f, 3.0f, 4.0f + offset});
  m.buffers = {{"features.0.1.running_mean", mean}, {"features.0.1.running_var", var}};
  return m;
}

TEST_F(WeightsTest, SaveLoadRoundTripInPlaceWithTorchvisionLayouts) {
  TinyModel saved = tiny_model(0.5f);
  save_parameters(path("tiny.safetensors"), saved.params, saved.buffers, {{"classes", "a,b,c,d,e"}});
  // The file holds PyTorch layouts under the same names.
  const SafetensorsFile file = read_safetensors(path("tiny.safetensors"));
  EXPECT_EQ(file.tensors.at("features.0.0.weight").shape(), (Shape{4, 3, 3, 3}));
  EXPECT_EQ(file.tensors.at("features.1.conv.0.0.weight").shape(), (Shape{4, 1, 3, 3}));
  EXPECT_EQ(file.tensors.at("features.1.conv.1.weight").shape(), (Shape{2, 4, 1, 1}));
  EXPECT_EQ(file.tensors.at("classifier.1.weight").shape(), (Shape{5, 2}));
  EXPECT_EQ(file.tensors.at("features.0.1.running_var").to_vector(), saved.buffers[1].tensor.to_vector());
  EXPECT_EQ(file.metadata.at("classes"), "a,b,c,d,e");

  TinyModel loaded = tiny_model(100.0f);
  Tensor alias = loaded.params[0].var->value;  // a layer would hold the same storage
  Tensor mean_alias = loaded.buffers[0].tensor;
  LoadReport report = load_parameters(path("tiny.safetensors"), loaded.params, loaded.buffers);
  EXPECT_EQ(report.loaded.size(), 8u);
  EXPECT_TRUE(report.missing.empty());
  EXPECT_TRUE(report.unused.empty());
  for (size_t i = 0; i < saved.params.size(); ++i)
    EXPECT_EQ(loaded.params[i].var->value.to_vector(), saved.params[i].var->value.to_vector()) << saved.params[i].name;
  EXPECT_EQ(alias.to_vector(), saved.params[0].var->value.to_vector());
  EXPECT_EQ(mean_alias.to_vector(), saved.buffers[0].tensor.to_vector());
}

TEST_F(WeightsTest, LoadMissingTensorIsNamedAndAllowMissingReportsIt) {
  TinyModel saved = tiny_model(0.0f);
  saved.params.pop_back();  // the file lacks classifier.1.bias
  save_parameters(path("partial.safetensors"), saved.params, saved.buffers);
  TinyModel model = tiny_model(1.0f);
  const std::vector<float> before = model.params[0].var->value.to_vector();
  try {
    load_parameters(path("partial.safetensors"), model.params, model.buffers);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("classifier.1.bias"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("partial.safetensors"), std::string::npos) << e.what();
  }
  EXPECT_EQ(model.params[0].var->value.to_vector(), before);  // a failed load changes nothing

  LoadReport report = load_parameters(path("partial.safetensors"), model.params, model.buffers, {.skip_prefixes = {}, .allow_missing = true});
  EXPECT_EQ(report.missing, (std::vector<std::string>{"classifier.1.bias"}));
  EXPECT_NE(model.params[0].var->value.to_vector(), before);
}

TEST_F(WeightsTest, LoadWrongShapeNamesTensorAndBothShapes) {
  TinyModel saved = tiny_model(0.0f);
  save_parameters(path("m.safetensors"), saved.params, saved.buffers);
  TinyModel model = tiny_model(0.0f);
  model.params[4].var->value = Tensor(Shape{2, 7});  // a 7-class head instead of 5
  try {
    load_parameters(path("m.safetensors"), model.params, model.buffers);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("classifier.1.weight"), std::string::npos) << message;
    EXPECT_NE(message.find("(5, 2)"), std::string::npos) << message;  // in the file
    EXPECT_NE(message.find("(2, 7)"), std::string::npos) << message;  // in the model
  }
}

TEST_F(WeightsTest, LoadBackboneWithSkipPrefixesReportsUnused) {
  TinyModel saved = tiny_model(0.0f);
  save_parameters(path("m.safetensors"), saved.params, saved.buffers);
  // The new model has a different head (3 classes): skip it, keep its fresh values.
  TinyModel model = tiny_model(9.0f);
  model.params[4].var->value = Tensor(Shape{2, 3}, {1, 1, 1, 1, 1, 1});
  model.params[5].var->value = Tensor(Shape{3}, {2, 2, 2});
  LoadReport report = load_parameters(path("m.safetensors"), model.params, model.buffers, {.skip_prefixes = {"classifier."}});
  EXPECT_EQ(report.skipped, (std::vector<std::string>{"classifier.1.weight", "classifier.1.bias"}));
  EXPECT_EQ(report.unused, (std::vector<std::string>{"classifier.1.weight", "classifier.1.bias"}));
  EXPECT_EQ(report.loaded.size(), 6u);
  EXPECT_EQ(model.params[5].var->value.to_vector(), (std::vector<float>{2, 2, 2}));
  EXPECT_EQ(model.params[0].var->value.to_vector(), saved.params[0].var->value.to_vector());

  // A file with extra tensors (e.g. saved by a bigger model) loads, and the extras are reported.
  TinyModel smaller = tiny_model(0.0f);
  smaller.buffers.clear();
  report = load_parameters(path("m.safetensors"), smaller.params, smaller.buffers);
  EXPECT_EQ(report.unused, (std::vector<std::string>{"features.0.1.running_mean", "features.0.1.running_var"}));
}

}  // namespace
}  // namespace mriscan
