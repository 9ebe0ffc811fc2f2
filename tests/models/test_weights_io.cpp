// Tests for the safetensors reader/writer (round trip, every validation error, atomic writes) and for the
// PyTorch <-> engine weight layout conversions and whole-model save/load (models/weights_io.h).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/safetensors.h"
#include "models/weights_io.h"

namespace mriscan {
namespace {

namespace fs = std::filesystem;

class WeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("mriscan_weights_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ignored);
    fs::remove_all(dir_, ignored);
  }
  std::string path(const std::string& file) const { return (dir_ / file).string(); }
  fs::path dir_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A hand-made file: 8-byte little-endian length, the header text as given, then `data_bytes` zero bytes.
void write_raw(const std::string& path, const std::string& header, size_t data_bytes, uint64_t length_field = ~0ull) {
  uint64_t n = length_field == ~0ull ? header.size() : length_field;
  std::string bytes(reinterpret_cast<const char*>(&n), 8);
  bytes += header;
  bytes += std::string(data_bytes, '\0');
  write_bytes(path, bytes);
}

// Reads `path` expecting a std::runtime_error whose message contains every one of `parts`.
void expect_read_error(const std::string& path, const std::vector<std::string>& parts) {
  try {
    read_safetensors(path);
    FAIL() << "expected an error reading " << path;
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
}

SafetensorsFile sample_file() {
  SafetensorsFile file;
  file.add("z.conv", Tensor(Shape{2, 1, 3, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  file.add("a.bias", Tensor(Shape{3}, {-1.5f, 0.0f, 3.25f}));
  file.add("scalar", Tensor(Shape{}, {42.0f}));
  file.add("empty", Tensor(Shape{0, 4}));
  file.add("matrix", Tensor(Shape{2, 2}, {1e-30f, -1e30f, 0.1f, 7.0f}));
  file.metadata = {{"epoch", "7"}, {"note", "hello \"world\""}};
  return file;
}

// ---------------------------------------------------------------------------------------------------------------
// safetensors

TEST_F(WeightsTest, SafetensorsRoundTripKeepsOrderValuesAndMetadata) {
  const SafetensorsFile original = sample_file();
  write_safetensors(path("m.safetensors"), original);
  EXPECT_FALSE(fs::exists(path("m.safetensors.tmp")));
  const SafetensorsFile loaded = read_safetensors(path("m.safetensors"));
  EXPECT_EQ(loaded.names, original.names);  // file order = insertion order, not alphabetical
  EXPECT_EQ(loaded.metadata, original.metadata);
  for (const std::string& name : original.names) {
    EXPECT_EQ(loaded.tensors.at(name).shape(), original.tensors.at(name).shape()) << name;
    EXPECT_EQ(loaded.tensors.at(name).to_vector(), original.tensors.at(name).to_vector()) << name;
  }
  // The data starts 8-byte aligned, as the reference writer does.
  const std::string bytes = read_bytes(path("m.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + (12 + 3 + 1 + 0 + 4) * sizeof(float));
}

TEST_F(WeightsTest, SafetensorsTruncatedAtSeveralCutPoints) {
  write_safetensors(path("full.safetensors"), sample_file());
  const std::string bytes = read_bytes(path("full.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  // Cuts inside the length field, inside the header, right after it, inside the data, and one byte short.
  const std::vector<std::pair<size_t, std::string>> cuts = {
      {0, "too short"}, {5, "too short"}, {8, "header length"}, {8 + n / 2, "header length"},
      {8 + n, "truncated"}, {8 + n + 10, "truncated"}, {bytes.size() - 1, "truncated"}};
  for (const auto& [cut, expected] : cuts) {
    const std::string cut_path = path("cut_" + std::to_string(cut) + ".safetensors");
    write_bytes(cut_path, bytes.substr(0, cut));
    SCOPED_TRACE("cut at " + std::to_string(cut));
    expect_read_error(cut_path, {cut_path, expected});
  }
}

TEST_F(WeightsTest, SafetensorsHeaderLengthLargerThanFileOrAbsurd) {
  const std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  write_raw(path("long.safetensors"), header, 4, header.size() + 100);
  expect_read_error(path("long.safetensors"), {"long.safetensors", "header length", "exceeds"});
  write_raw(path("absurd.safetensors"), header, 4, 1ull << 62);
  expect_read_error(path("absurd.safetensors"), {"absurd.safetensors", "absurd"});
}

TEST_F(WeightsTest, SafetensorsInvalidJson) {
  write_raw(path("bad.safetensors"), R"({"w":{"dtype":"F32","shape":[1],)", 4);
  expect_read_error(path("bad.safetensors"), {"bad.safetensors", "not valid JSON"});
  write_raw(path("array.safetensors"), "[1, 2]", 0);
  expect_read_error(path("array.safetensors"), {"not a JSON object"});
}

TEST_F(WeightsTest, SafetensorsUnsupportedDtypeNamesTensorAndDtype) {
  write_raw(path("f16.safetensors"),
            R"({"ok":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
            R"("features.0.1.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[4,12]}})",
            12);
  expect_read_error(path("f16.safetensors"), {"f16.safetensors", "features.0.1.num_batches_tracked", "'I64'", "F32"});
}

TEST_F(WeightsTest, SafetensorsShapeOffsetsMismatchOutOfRangeAndOverlap) {
  write_raw(path("mismatch.safetensors"), R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20);
  expect_read_error(path("mismatch.safetensors"), {"'w'", "[2,3]", "24 bytes", "[0,20]"});
  write_raw(path("range.safetensors"), R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 12);
  expect_read_error(path("range.safetensors"), {"'w'", "past the end"});
  write_raw(path("overlap.safetensors"),
            R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
            16);
  expect_read_error(path("overlap.safetensors"), {"overlap", "'a'", "'b'"});
  write_raw(path("rank5.safetensors"), R"({"w":{"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[0,4]}})", 4);
  expect_read_error(path("rank5.safetensors"), {"'w'", "rank 5"});
  write_raw(path("negative.safetensors"), R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4);
  expect_read_error(path("negative.safetensors"), {"'w'", "negative"});
  write_raw(path("nofield.safetensors"), R"({"w":{"dtype":"F32","shape":[1]}})", 4);
  expect_read_error(path("nofield.safetensors"), {"'w'", "data_offsets"});
  write_raw(path("meta.safetensors"), R"({"__metadata__":{"epoch":3}})", 0);
  expect_read_error(path("meta.safetensors"), {"metadata 'epoch'"});
}

TEST_F(WeightsTest, SafetensorsWriteIntoMissingDirectoryThrowsWithPath) {
  const std::string bad = path("no/such/dir/m.safetensors");
  try {
    write_safetensors(bad, sample_file());
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

TEST_F(WeightsTest, SafetensorsFullDiskLeavesPreviousFileIntact) {
  // A file-size limit makes write() fail with EFBIG part-way, exactly like a full disk (works even as root).
  const std::string target = path("m.safetensors");
  write_safetensors(target, sample_file());
  const std::string before = read_bytes(target);

  SafetensorsFile big;
  big.add("big", Tensor(Shape{1 << 20}));  // 4 MiB
  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct rlimit small = old_limit;
  small.rlim_cur = 64 * 1024;
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // otherwise exceeding the limit kills the process
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    write_safetensors(target, big);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_NE(message.find(target), std::string::npos) << "no error naming the file: '" << message << "'";
  EXPECT_EQ(read_bytes(target), before);
  EXPECT_FALSE(fs::exists(target + ".tmp"));
  EXPECT_EQ(read_safetensors(target).names, sample_file().names);
}

TEST_F(WeightsTest, SafetensorsReadOnlyDirectoryLeavesPreviousFileIntact) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  const std::string target = path("ro/m.safetensors");
  fs::create_directories(dir_ / "ro");
  write_safetensors(target, sample_file());
  const std::string before = read_bytes(target);
  fs::permissions(dir_ / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_THROW(write_safetensors(target, SafetensorsFile{}), std::runtime_error);
  fs::permissions(dir_ / "ro", fs::perms::owner_all);
  EXPECT_EQ(read_bytes(target), before);
}

TEST(WeightsSafetensors, AddRejectsDuplicatesAndReservedNames) {
  SafetensorsFile file;
  file.add("w", Tensor(Shape{1}));
  EXPECT_THROW(file.add("w", Tensor(Shape{1})), std::invalid_argument);
  EXPECT_THROW(file.add("__metadata__", Tensor(Shape{1})), std::invalid_argument);
  EXPECT_THROW(file.add("u", Tensor()), std::invalid_argument);
}

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
