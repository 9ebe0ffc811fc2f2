// Example: classifying one scan with a model file, as `mriscan predict` and the server do.
//
//   classify_scan MODEL.safetensors IMAGE [CLASS,NAMES,...]
//
// A model file (models/model_file.h) is one safetensors file: the MobileNetV2's weights under torchvision's names,
// and metadata (class names, width multiplier, image size, temperature). `Classifier::load` builds the network it
// describes, loads the weights, and folds each batch norm into the conv before it (models/folded_mobilenet_v2.h),
// so a prediction is just convolutions. `predict` then resizes the image to the model's size, normalises it
// (data/preprocess.h), runs the folded forward, and turns the logits into probabilities (softmax of logits / T).
// The optional third argument names the classes of a file without names (a torchvision state dict).
// Checks what any prediction must satisfy (exit 1 otherwise): one probability per class, summing to 1, and the
// predicted class is one of the model's classes, the most probable one.
//
// Read next: infer/classifier.h and .cpp (load, predict), models/model_file.h, io/image_io.h (decoding),
// data/preprocess.h (image -> (1, S, S, 3) tensor), models/folded_mobilenet_v2.h (the inference network).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "infer/classifier.h"
#include "io/image_io.h"

using namespace mriscan;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL.safetensors IMAGE [CLASS,NAMES,...]\n", argv[0]);
    return 2;
  }
  try {
    ModelLoadOptions options;  // class names, only for a file that has none
    std::stringstream names(argc > 3 ? argv[3] : "");
    for (std::string name; std::getline(names, name, ',');) options.class_names.push_back(name);

    std::shared_ptr<Classifier> classifier = Classifier::load(argv[1], options);
    for (const std::string& warning : classifier->warnings()) std::fprintf(stderr, "warning: %s\n", warning.c_str());
    const std::vector<std::string>& classes = classifier->class_names();
    std::printf("model %s: %zu classes, input %dx%d, temperature %.3g\n", argv[1], classes.size(),
                classifier->image_size(), classifier->image_size(), classifier->temperature());

    // 8-bit RGB, (H, W, 3); a large JPEG decoded at a reduced DCT scale, as `mriscan predict` does.
    const Image image = load_image(argv[2], {.min_decoded_side = classifier->image_size()});
    const Prediction prediction = classifier->predict(image);
    std::printf("image %s (%dx%d): %s, %.1f%% (%.1f ms)\n", argv[2], image.width, image.height,
                prediction.class_name.c_str(), 100.0 * prediction.confidence, prediction.inference_ms);
    double sum = 0.0;
    for (size_t k = 0; k < prediction.probabilities.size(); ++k) {
      std::printf("  %-12s %.4f\n", k < classes.size() ? classes[k].c_str() : "?", prediction.probabilities[k]);
      sum += prediction.probabilities[k];
    }
    if (prediction.out_of_distribution) std::printf("  (flagged out of distribution: not like the training scans)\n");

    const bool one_per_class = prediction.probabilities.size() == classes.size();
    const bool sums_to_one = std::abs(sum - 1.0) < 1e-4;
    const bool known_class = std::find(classes.begin(), classes.end(), prediction.class_name) != classes.end();
    const bool most_probable = one_per_class && known_class &&
        prediction.confidence == *std::max_element(prediction.probabilities.begin(), prediction.probabilities.end());
    if (!(one_per_class && sums_to_one && known_class && most_probable)) {
      std::printf("FAILED: %zu probabilities for %zu classes, sum %.6f, class '%s'\n",
                  prediction.probabilities.size(), classes.size(), sum, prediction.class_name.c_str());
      return 1;
    }
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 1;
  }
}
