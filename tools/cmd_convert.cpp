// `mriscan convert`: ImageNet MobileNetV2 (.npy, BN folded) -> a mriscan backbone file with calibrated BN.
// What it is not: the importer itself (models/imagenet_import.h) or a converter of PyTorch files (interop/).
#include <filesystem>
#include <iostream>

#include "data/dataset.h"
#include "data/preprocess.h"
#include "data/random.h"
#include "io/image_io.h"
#include "models/imagenet_import.h"
#include "models/model_file.h"
#include "tools/command.h"
#include "tools/command_line.h"

namespace mriscan {
namespace {

namespace fs = std::filesystem;

const char* kSynopsis = R"(usage: mriscan convert --out FILE [options]

Reads the BN-folded ImageNet weights (default ../shared/weights/mobilenetv2_1.0_224_nchw_bnfolded_npy), gives
every BatchNorm the statistics of N training images (default 256, from --data, default
../shared/data/brain-tumor-mri/Training) while keeping the folded network's function (see
models/imagenet_import.h), and writes a backbone file without classifier, with torchvision names.
)";

struct ConvertOptions {
  std::string out, npy_dir, data;  // npy_dir, data: empty for the ../shared defaults
  int calibration_images = 256;
  int image_size = 224;
  int seed = 0;
  bool json = false;
};

void add_options(CommandLine& cli, ConvertOptions& o) {
  cli.add_option("--out", o.out, "the backbone file to write (required)")->type_name("FILE")->required();
  cli.add_option("--npy-dir", o.npy_dir,
                 "folder of the BN-folded .npy weights (../shared/weights/mobilenetv2_1.0_224_nchw_bnfolded_npy)")
      ->type_name("DIR");
  cli.add_option("--data", o.data,
                 "dataset root whose Training/ gives the calibration images (../shared/data/brain-tumor-mri)")
      ->type_name("DIR");
  cli.add_option("--calibration-images", o.calibration_images,
                 "training images that calibrate the batch norms (256)")
      ->type_name("N");
  cli.add_option("--image-size", o.image_size, "input resolution of the calibration (224)")->type_name("N");
  cli.add_option("--seed", o.seed, "seed of the calibration image choice (0)")->type_name("N");
  cli.add_flag("--json", o.json, "print the result as one JSON document on stdout");
}

// Up to `count` readable images of `data` in a seeded random order, preprocessed in batches of 16; `used` is how
// many were read (unreadable files are skipped with a line on stderr).
std::vector<Tensor> calibration_batches(const fs::path& data, const ConvertOptions& o, int& used) {
  std::vector<Sample> samples = scan_dataset(data.string()).samples;
  std::mt19937 rng(static_cast<uint32_t>(o.seed));
  fisher_yates_shuffle(samples, rng);
  std::vector<Tensor> batches;
  std::vector<Image> images;
  used = 0;
  for (const Sample& sample : samples) {
    if (used >= o.calibration_images) break;
    try {
      images.push_back(load_image(sample.path));
    } catch (const ImageError& error) {
      std::cerr << "skipping " << error.what() << "\n";
      continue;
    }
    ++used;
    if (images.size() == 16 || used == o.calibration_images) {
      batches.push_back(preprocess_batch(images, o.image_size));
      images.clear();
    }
  }
  if (!images.empty()) batches.push_back(preprocess_batch(images, o.image_size));
  return batches;
}

int run_convert(const std::vector<std::string>& args) {
  ConvertOptions o;
  CommandLine cli(kSynopsis);
  add_options(cli, o);
  if (cli.parse_arguments(args) == Parsed::help_printed) return 0;
  const fs::path out_dir = fs::path(o.out).parent_path();
  if (!out_dir.empty()) fs::create_directories(out_dir);  // `--out runs/backbone.safetensors` on a fresh clone
  const std::string npy_dir =
      o.npy_dir.empty() ? find_shared_dir() + "/weights/mobilenetv2_1.0_224_nchw_bnfolded_npy" : o.npy_dir;
  fs::path data = o.data.empty() ? fs::path(find_shared_dir()) / "data/brain-tumor-mri" : fs::path(o.data);
  if (fs::is_directory(data / "Training")) data /= "Training";

  MobileNetV2Config config;
  config.width_mult = 1.0f;
  config.num_classes = 1;  // placeholder head; not written (num_classes = 0 in the file)
  MobileNetV2 model(config);
  load_folded_backbone(model, npy_dir);

  int used = 0;
  const std::vector<Tensor> batches = calibration_batches(data, o, used);
  if (used == 0) throw CommandError("no readable calibration image in " + data.string());
  std::cerr << "calibrating batch norm on " << used << " images from " << data.string() << "\n";
  calibrate_batch_norm(model, batches);

  save_model_file(o.out, model, o.image_size, {},
                  {{"num_classes", "0"},
                   {"source", "ImageNet MobileNetV2 1.0 (ONNX model zoo mobilenetv2-7, BN folded), " + npy_dir},
                   {"bn_calibration", std::to_string(used) + " images of " + data.string()}});
  if (o.json)
    std::cout << nlohmann::json({{"out", o.out}, {"calibration_images", used}}).dump() << "\n";
  else
    std::cout << "wrote " << o.out << " (backbone, " << used << " calibration images)\n";
  return 0;
}

const RegisterCommand kRegister({"convert", "import ImageNet MobileNetV2 weights (.npy) as a backbone file",
                                 run_convert});

}  // namespace
}  // namespace mriscan
