// Import of the ImageNet MobileNetV2 weights in ../shared/weights/mobilenetv2_1.0_224_nchw_bnfolded_npy.
//
// Those weights have BatchNorm folded into each conv (w' = w * gamma / sigma, b' = beta + (b - mu) * gamma /
// sigma): there are no BN tensors. Our MobileNetV2 has a BN after every conv (torchvision's architecture, needed
// to fine-tune well), so the import must give each BN values under which the network still computes the folded
// function. Two steps:
//
// 1. `load_folded_backbone`: conv weights from the files; each BN set to "add the folded bias":
//    gamma = 1, beta = b', running_mean = 0, running_var = 1 - eps, so eval-mode BN(z) = z + b' exactly.
// 2. `calibrate_batch_norm`: a forward pass over sample training images in eval mode (which, after step 1,
//    is the folded network) reads every BN's input z through the tape and sets
//        running_mean = E[z], running_var = Var[z], gamma = sqrt(Var[z] + eps), beta = b' + E[z]
//    (the code's general form, for a BN whose eval map is a z + c: gamma = a sqrt(Var[z] + eps),
//    beta = a E[z] + c; after step 1, a = 1 and c = b').
//    Then eval-mode BN(z) = gamma (z - E[z]) / sqrt(Var[z] + eps) + beta = z + b' is still the folded function,
//    and training-mode BN, which normalises with batch statistics close to E[z] and Var[z], starts close to it
//    too. Without step 2, the first training step's batch statistics would re-normalise every pretrained
//    activation to unit variance and destroy the pretrained scales.
// What it is not: a general ONNX importer. Width 1.0 only (the only weights we have); no classifier (the
// 1000-class weight is missing from the files and useless for 4 classes anyway).
#pragma once

#include <string>
#include <vector>

#include "engine/tensor.h"
#include "models/mobilenet_v2.h"

namespace mriscan {

// Loads conv weights and folded biases into `model` (width 1.0). Throws naming the file on a missing file or a
// shape mismatch.
void load_folded_backbone(MobileNetV2& model, const std::string& npy_dir);

// Step 2 above; `batches` are preprocessed images (N, S, S, 3). Leaves the model in eval mode.
void calibrate_batch_norm(MobileNetV2& model, const std::vector<Tensor>& batches, float eps = 1e-5f);

}  // namespace mriscan
