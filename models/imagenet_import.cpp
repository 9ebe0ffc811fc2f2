// ImageNet import: .npy files -> conv weights (OIHW -> engine layout) + identity BN, then BN calibration.
#include "models/imagenet_import.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <stdexcept>

#include "io/npy.h"
#include "models/weights_io.h"

namespace mriscan {

namespace {

// "features.3.conv.2.weight" -> "features.3.conv.3." : the BN follows its conv at the next Sequential index.
std::string batch_norm_prefix_for(const std::string& conv_weight_name) {
  static const std::regex pattern(R"((.*\.)(\d+)\.weight$)");
  std::smatch match;
  if (!std::regex_match(conv_weight_name, match, pattern))
    throw std::logic_error("imagenet_import: unexpected conv name " + conv_weight_name);
  return match[1].str() + std::to_string(std::stoi(match[2].str()) + 1) + ".";
}

std::map<std::string, Var> parameters_by_name(MobileNetV2& model) {
  std::map<std::string, Var> by_name;
  for (NamedParameter& p : model.parameters()) by_name[p.name] = p.var;
  return by_name;
}

std::map<std::string, Tensor> buffers_by_name(MobileNetV2& model) {
  std::map<std::string, Tensor> by_name;
  for (NamedBuffer& b : model.buffers()) by_name[b.name] = b.tensor;
  return by_name;
}

}  // namespace

void load_folded_backbone(MobileNetV2& model, const std::string& npy_dir) {
  if (model.config().width_mult != 1.0f)
    throw std::invalid_argument("load_folded_backbone: the ImageNet weights are width 1.0, the model is " +
                                std::to_string(model.config().width_mult));
  if (!std::filesystem::is_directory(npy_dir))
    throw std::runtime_error("ImageNet weights folder not found: " + npy_dir);
  // The files are numbered by ONNX node index; sorted numerically they follow the network's order, which is
  // also torchvision's parameter order (SOURCES.md's layer map).
  std::vector<int> node_indices;
  static const std::regex file_pattern(R"(conv_(\d+)_weight\.npy)");
  for (const auto& entry : std::filesystem::directory_iterator(npy_dir)) {
    std::smatch match;
    const std::string file = entry.path().filename().string();
    if (std::regex_match(file, match, file_pattern)) node_indices.push_back(std::stoi(match[1].str()));
  }
  std::sort(node_indices.begin(), node_indices.end());

  std::vector<NamedParameter> conv_weights;  // every conv of features.*, in forward order
  for (NamedParameter& p : model.parameters())
    if (p.name.rfind("features.", 0) == 0 && p.name.size() > 7 && p.var->value.shape().rank() >= 2 &&
        p.name.compare(p.name.size() - 7, 7, ".weight") == 0)
      conv_weights.push_back(p);
  if (node_indices.size() != conv_weights.size())
    throw std::runtime_error(npy_dir + ": found " + std::to_string(node_indices.size()) + " conv_*_weight.npy files, " +
                             "the model has " + std::to_string(conv_weights.size()) + " convolutions");

  auto params = parameters_by_name(model);
  auto buffers = buffers_by_name(model);
  for (size_t i = 0; i < conv_weights.size(); ++i) {
    const std::string stem = npy_dir + "/conv_" + std::to_string(node_indices[i]);
    Var weight = conv_weights[i].var;
    Tensor file_weight = read_npy(stem + "_weight.npy");  // (O, I, KH, KW)
    Tensor engine_weight = to_engine_layout(file_weight, weight->value.shape(), conv_weights[i].name);
    std::copy_n(engine_weight.data(), engine_weight.numel(), weight->value.data());

    const Tensor bias = read_npy(stem + "_bias.npy");  // (O)
    const std::string bn = batch_norm_prefix_for(conv_weights[i].name);
    Tensor gamma = params.at(bn + "weight")->value, beta = params.at(bn + "bias")->value;
    Tensor mean = buffers.at(bn + "running_mean"), var = buffers.at(bn + "running_var");
    if (bias.numel() != beta.numel())
      throw std::runtime_error(stem + "_bias.npy: " + std::to_string(bias.numel()) + " values, " + bn + "bias has " +
                               std::to_string(beta.numel()));
    const float eps = 1e-5f;  // BatchNorm2d's default
    for (int64_t c = 0; c < beta.numel(); ++c) {
      gamma[c] = 1.0f;
      beta[c] = bias[c];
      mean[c] = 0.0f;
      var[c] = 1.0f - eps;  // so that 1 / sqrt(var + eps) == 1
    }
  }
}

void calibrate_batch_norm(MobileNetV2& model, const std::vector<Tensor>& batches, float eps) {
  model.set_training(false);
  // Per BN (keyed by its gamma Var): running sums of z and z^2 over every row of every batch, in double.
  struct Moments {
    std::vector<double> sum, sum_sq;
    int64_t count = 0;
  };
  std::map<Variable*, Moments> moments;
  for (const Tensor& batch : batches) {
    Tape tape;  // records every BN node (gamma/beta need gradients), giving us each BN's input
    model.forward_blocks(tape, make_var(batch), 0, MobileNetV2::kNumBlocks);
    for (const TapeNode& node : tape.nodes()) {
      if (node.op_name != "batch_norm") continue;
      const Tensor& z = node.inputs.at(0)->value;  // (N, H, W, C)
      const int channels = static_cast<int>(z.dim(-1));
      const int64_t rows = z.numel() / channels;
      Moments& m = moments[node.inputs.at(1).get()];
      m.sum.resize(channels, 0.0);
      m.sum_sq.resize(channels, 0.0);
      for (int64_t r = 0; r < rows; ++r)
        for (int c = 0; c < channels; ++c) {
          const double value = z[r * channels + c];
          m.sum[c] += value;
          m.sum_sq[c] += value * value;
        }
      m.count += rows;
    }
  }
  auto buffers = buffers_by_name(model);
  int calibrated = 0;
  for (NamedParameter& p : model.parameters()) {
    auto found = moments.find(p.var.get());
    if (found == moments.end()) continue;
    const std::string bn = p.name.substr(0, p.name.size() - std::string("weight").size());
    Tensor gamma = p.var->value;
    Tensor beta = parameters_by_name(model).at(bn + "bias")->value;
    Tensor running_mean = buffers.at(bn + "running_mean"), running_var = buffers.at(bn + "running_var");
    const Moments& m = found->second;
    for (int c = 0; c < gamma.numel(); ++c) {
      const double mean = m.sum[c] / m.count;
      const double var = std::max(0.0, m.sum_sq[c] / m.count - mean * mean);
      // Preserve the current eval-mode function z -> gamma (z - mu) / sqrt(v + eps) + beta while moving mu, v
      // to the data's statistics: first read the current affine map z -> a z + b, then re-express it.
      const double a = gamma[c] / std::sqrt(static_cast<double>(running_var[c]) + eps);
      const double b = beta[c] - a * running_mean[c];
      running_mean[c] = static_cast<float>(mean);
      running_var[c] = static_cast<float>(var);
      gamma[c] = static_cast<float>(a * std::sqrt(var + eps));
      beta[c] = static_cast<float>(a * mean + b);
    }
    ++calibrated;
  }
  if (calibrated == 0) throw std::logic_error("calibrate_batch_norm: no batch-norm input was observed");
}

}  // namespace mriscan
