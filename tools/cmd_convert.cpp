// `mriscan convert`: ImageNet MobileNetV2 (.npy, BN folded) -> a mriscan backbone file with calibrated BN.
#include <filesystem>
#include <iostream>

#include "data/dataset.h"
#include "data/preprocess.h"
#include "data/random.h"
#include "io/image_io.h"
#include "models/imagenet_import.h"
#include "models/model_file.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mriscan {
namespace {

const char* kSynopsis = R"(usage: mriscan convert --out FILE [options]

Reads the BN-folded ImageNet weights (default ../shared/weights/mobilenetv2_1.0_224_nchw_bnfolded_npy), gives
every BatchNorm the statistics of N training images (default 256, from --data, default
../shared/data/brain-tumor-mri/Training) while keeping the folded network's function (see
models/imagenet_import.h), and writes a backbone file without classifier, with torchvision names.
)";

const std::vector<Option> kOptions = {
    {"out", "FILE", "the backbone file to write (required)"},
    {"npy-dir", "DIR",
     "folder of the BN-folded .npy weights (../shared/weights/mobilenetv2_1.0_224_nchw_bnfolded_npy)"},
    {"data", "DIR", "dataset root whose Training/ gives the calibration images (../shared/data/brain-tumor-mri)"},
    {"calibration-images", "N", "training images that calibrate the batch norms (256)"},
    {"image-size", "N", "input resolution of the calibration (224)"},
    {"seed", "N", "seed of the calibration image choice (0)"},
    {"json", "", "print the result as one JSON document on stdout"},
};

int run_convert(const std::vector<std::string>& raw) {
  Args args(raw, kOptions);
  if (args.help()) {
    std::cout << usage_text(kSynopsis, kOptions);
    return 0;
  }
  namespace fs = std::filesystem;
  const std::string out = args.require("out");
  const fs::path out_dir = fs::path(out).parent_path();
  if (!out_dir.empty()) fs::create_directories(out_dir);  // `--out runs/backbone.safetensors` on a fresh clone
  const std::string npy_dir = args.has("npy-dir")
                                  ? args.get("npy-dir", "")
                                  : find_shared_dir() + "/weights/mobilenetv2_1.0_224_nchw_bnfolded_npy";
  fs::path data =
      args.has("data") ? fs::path(args.get("data", "")) : fs::path(find_shared_dir()) / "data/brain-tumor-mri";
  if (fs::is_directory(data / "Training")) data /= "Training";
  const int count = args.get_int("calibration-images", 256);
  const int image_size = args.get_int("image-size", 224);

  MobileNetV2Config config;
  config.width_mult = 1.0f;
  config.num_classes = 1;  // placeholder head; not written (num_classes = 0 in the file)
  MobileNetV2 model(config);
  load_folded_backbone(model, npy_dir);

  std::vector<Sample> samples = scan_dataset(data.string()).samples;
  std::mt19937 rng(static_cast<uint32_t>(args.get_int("seed", 0)));
  fisher_yates_shuffle(samples, rng);
  std::vector<Tensor> batches;
  std::vector<Image> images;
  int used = 0;
  for (const Sample& sample : samples) {
    if (used >= count) break;
    try {
      images.push_back(load_image(sample.path));
    } catch (const ImageError& error) {
      std::cerr << "skipping " << error.what() << "\n";
      continue;
    }
    ++used;
    if (images.size() == 16 || used == count) {
      batches.push_back(preprocess_batch(images, image_size));
      images.clear();
    }
  }
  if (!images.empty()) batches.push_back(preprocess_batch(images, image_size));
  if (used == 0) throw CommandError("no readable calibration image in " + data.string());
  std::cerr << "calibrating batch norm on " << used << " images from " << data.string() << "\n";
  calibrate_batch_norm(model, batches);

  save_model_file(out, model, image_size, {},
                  {{"num_classes", "0"},
                   {"source", "ImageNet MobileNetV2 1.0 (ONNX model zoo mobilenetv2-7, BN folded), " + npy_dir},
                   {"bn_calibration", std::to_string(used) + " images of " + data.string()}});
  if (args.flag("json"))
    std::cout << nlohmann::json({{"out", out}, {"calibration_images", used}}).dump() << "\n";
  else
    std::cout << "wrote " << out << " (backbone, " << used << " calibration images)\n";
  return 0;
}

const RegisterCommand kRegister({"convert", "import ImageNet MobileNetV2 weights (.npy) as a backbone file",
                                 run_convert});

}  // namespace
}  // namespace mriscan
