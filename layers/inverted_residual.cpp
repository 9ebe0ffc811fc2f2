// InvertedResidual and ConvBn: composition of conv, BN, ReLU6 and the residual add (see the header for the math).
#include "layers/inverted_residual.h"

#include "layers/add.h"
#include "layers/depthwise_conv2d.h"
#include "layers/pointwise_conv2d.h"

namespace mriscan {

ConvBn::ConvBn(std::unique_ptr<Layer> conv, int out_channels, bool relu6)
    : conv_(std::move(conv)), bn_(out_channels), relu6_(relu6) {}

Var ConvBn::forward(Tape& tape, const Var& x) {
  const Var y = conv_->forward(tape, x);
  // Training: BN and ReLU6 in one kernel pass and one node (no pre-activation buffer); eval: BN, then ReLU6.
  if (relu6_ && bn_.training()) return bn_.forward_train_activated(tape, y, Activation::kReLU6);
  const Var z = bn_.forward(tape, y);
  return relu6_ ? activation_.forward(tape, z) : z;
}

void ConvBn::collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) {
  conv_->collect_parameters(prefix + "0.", out);
  bn_.collect_parameters(prefix + "1.", out);
}

void ConvBn::collect_buffers(const std::string& prefix, std::vector<NamedBuffer>& out) {
  conv_->collect_buffers(prefix + "0.", out);
  bn_.collect_buffers(prefix + "1.", out);
}

void ConvBn::set_training(bool training) {
  Layer::set_training(training);
  conv_->set_training(training);
  bn_.set_training(training);
}

void ConvBn::set_collective(Collective* world) { bn_.set_collective(world); }

InvertedResidual::InvertedResidual(int in_channels, int out_channels, int stride, int expand_ratio, std::mt19937& rng)
    : use_residual_(stride == 1 && in_channels == out_channels) {
  const int hidden = in_channels * expand_ratio;
  if (expand_ratio != 1)
    conv_bn_relu_.push_back(
        std::make_unique<ConvBn>(std::make_unique<PointwiseConv2d>(in_channels, hidden, false, rng), hidden, true));
  conv_bn_relu_.push_back(
      std::make_unique<ConvBn>(std::make_unique<DepthwiseConv2d>(hidden, stride, false, rng), hidden, true));
  project_ = std::make_unique<PointwiseConv2d>(hidden, out_channels, false, rng);
  project_bn_ = std::make_unique<BatchNorm2d>(out_channels);
}

Var InvertedResidual::forward(Tape& tape, const Var& x) {
  Var h = x;
  for (auto& unit : conv_bn_relu_) h = unit->forward(tape, h);
  h = project_bn_->forward(tape, project_->forward(tape, h));
  return use_residual_ ? add(tape, x, h) : h;
}

void InvertedResidual::collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) {
  const int units = static_cast<int>(conv_bn_relu_.size());
  for (int i = 0; i < units; ++i) conv_bn_relu_[i]->collect_parameters(prefix + "conv." + std::to_string(i) + ".", out);
  project_->collect_parameters(prefix + "conv." + std::to_string(units) + ".", out);
  project_bn_->collect_parameters(prefix + "conv." + std::to_string(units + 1) + ".", out);
}

void InvertedResidual::collect_buffers(const std::string& prefix, std::vector<NamedBuffer>& out) {
  const int units = static_cast<int>(conv_bn_relu_.size());
  for (int i = 0; i < units; ++i) conv_bn_relu_[i]->collect_buffers(prefix + "conv." + std::to_string(i) + ".", out);
  project_bn_->collect_buffers(prefix + "conv." + std::to_string(units + 1) + ".", out);
}

void InvertedResidual::set_training(bool training) {
  Layer::set_training(training);
  for (auto& unit : conv_bn_relu_) unit->set_training(training);
  project_->set_training(training);
  project_bn_->set_training(training);
}

void InvertedResidual::set_collective(Collective* world) {
  for (auto& unit : conv_bn_relu_) unit->set_collective(world);
  project_bn_->set_collective(world);
}

}  // namespace mriscan
