// THE preprocessing: an 8-bit RGB Image becomes the float network input. Training, evaluation, `mriscan predict`
// and the server all call `preprocess` and nothing else.
//
// Why only one: the TensorFlow prototype this project replaces scaled images one way in training and another way
// in serving, so the deployed model saw inputs it was never trained on and silently lost accuracy. Having one
// function (and storing PreprocessSpec::describe() in every model file's metadata) makes that bug impossible to
// write and easy to detect when loading an old model.
//
// Steps: resize_to_input (resize to (size, size) with resize_bilinear, io/image_io.h), then per channel
//   out = (rgb / 255 - mean[c]) / std[c]     mean = (0.485, 0.456, 0.406), std = (0.229, 0.224, 0.225)
// (the ImageNet statistics the torchvision MobileNetV2 weights were trained with), layout (H, W, C) float32.
// An image already (size, size) is normalised as it is: the server calls resize_to_input right after decoding (so
// a request holds small images, not full-size ones), and that is the one resize on its way to the network.
// Grayscale and alpha were already handled by decoding (every Image is RGB). What it is not: augmentation (that is
// data/augment.h, applied to the uint8 Image before this, in training only).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "io/image_io.h"

namespace mriscan {

struct PreprocessSpec {
  int size = 224;  // output is (size, size, 3)
  static constexpr std::array<float, 3> kMean = {0.485f, 0.456f, 0.406f};
  static constexpr std::array<float, 3> kStd = {0.229f, 0.224f, 0.225f};

  // One line stored in model metadata ("preprocessing"), e.g.
  // "resize 224x224 bilinear half-pixel (box prefilter above 2x); rgb/255; mean [0.485,0.456,0.406]; ..."
  std::string describe() const;
};

// The geometric step alone: image (H, W, 3) uint8 -> (size, size, 3) uint8, bilinear. Throws ImageError on an
// empty image or size <= 0.
Image resize_to_input(const Image& image, int size);

// image (H, W, 3) uint8 -> out (size, size, 3) float: resize_to_input unless the image is already (size, size),
// then normalise. Throws ImageError on an empty image or size <= 0.
void preprocess(const Image& image, int size, float* out);

// images -> (N, size, size, 3); images are processed in parallel (each thread owns whole images).
Tensor preprocess_batch(const std::vector<Image>& images, int size);

}  // namespace mriscan
