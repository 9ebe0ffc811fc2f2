// `mriscan train`: fine-tune MobileNetV2 on a folder of class folders (see models/trainer.h).
#include <iostream>

#include "models/dataset.h"
#include "models/metrics.h"
#include "tools/args.h"
#include "tools/command.h"
#include "tools/progress.h"

namespace mriscan {
namespace {

const char* kUsage = R"(usage: mriscan train --out RUNDIR [options]
       mriscan train --resume RUNDIR [--epochs N]

Fine-tunes MobileNetV2 on DIR/Training (validation carved out of it, stratified and seeded) and evaluates the
best model (chosen on validation loss) once on DIR/Testing.

  --data DIR            dataset root with Training/ [Testing/] (default: ../shared/data/brain-tumor-mri)
  --weights FILE        initial weights (from `mriscan convert` or a previous model); default: random init
  --out RUNDIR          where the model, logs, metrics and plots go
  --resume RUNDIR       continue an interrupted run exactly
  --epochs N            maximum epochs (15)            --batch N         batch size (32)
  --image-size N        input resolution (224)         --width W         width multiplier (1.0)
  --lr X                learning rate (1e-3)           --optimizer NAME  adamw | adam | sgd (adamw)
  --weight-decay X      (1e-4)                         --label-smoothing X  (0.1)
  --frozen-blocks K     freeze features.0..K-1 (0)     --cache-frozen    compute the frozen prefix once (needs --no-augment)
  --no-augment          no augmentation                --seed N          (42)
  --patience N          EarlyStopping patience (5)     --lr-patience N   ReduceLROnPlateau patience (3)
  --val-fraction X      (0.15)                         --max-per-class N use at most N images per class (quick runs)
  --threads N           OpenMP threads (all cores)     --no-test         skip the Testing evaluation
  --json                print the final metrics as one JSON document on stdout
)";

int run_train(const std::vector<std::string>& raw) {
  Args args(raw,
            {"data", "weights", "out", "resume", "epochs", "batch", "image-size", "width", "lr", "optimizer",
             "weight-decay", "label-smoothing", "frozen-blocks", "seed", "patience", "lr-patience", "val-fraction",
             "max-per-class", "threads"},
            {"cache-frozen", "no-augment", "no-test", "json"});
  if (args.help()) {
    std::cout << kUsage;
    return 0;
  }
  TrainConfig config;
  config.resume_dir = args.get("resume", "");
  if (config.resume_dir.empty()) config.out_dir = args.require("out");
  config.data_dir = args.has("data") ? args.get("data", "") : find_shared_dir() + "/data/brain-tumor-mri";
  config.weights = args.get("weights", "");
  config.epochs = args.get_int("epochs", config.epochs);
  config.batch_size = args.get_int("batch", config.batch_size);
  config.image_size = args.get_int("image-size", config.image_size);
  config.width_mult = static_cast<float>(args.get_double("width", config.width_mult));
  config.learning_rate = args.get_double("lr", config.learning_rate);
  config.optimizer = args.get("optimizer", config.optimizer);
  config.weight_decay = args.get_double("weight-decay", config.weight_decay);
  config.label_smoothing = args.get_double("label-smoothing", config.label_smoothing);
  config.frozen_blocks = args.get_int("frozen-blocks", config.frozen_blocks);
  config.cache_frozen = args.flag("cache-frozen");
  config.augment = !args.flag("no-augment");
  config.seed = static_cast<uint32_t>(args.get_int("seed", static_cast<int>(config.seed)));
  config.patience = args.get_int("patience", config.patience);
  config.lr_patience = args.get_int("lr-patience", config.lr_patience);
  config.val_fraction = args.get_double("val-fraction", config.val_fraction);
  config.max_samples_per_class = args.get_int("max-per-class", 0);
  config.threads = args.get_int("threads", 0);
  config.evaluate_test = !args.flag("no-test");

  ProgressPrinter printer;
  TrainResult result = train_model(config, [&](const TrainProgress& p) { printer(p); });
  if (args.flag("json")) {
    std::cout << result.metrics.dump(2) << "\n";
    return 0;
  }
  const auto& val = result.metrics["validation"];
  std::cout << "model: " << result.model_path << "\n";
  std::cout << "validation accuracy: " << 100.0 * val.value("accuracy", 0.0) << "%  (ECE "
            << 100.0 * val.value("ece", 0.0) << "%, temperature " << result.metrics["temperature"]["value"] << ")\n";
  if (result.metrics.contains("test")) {
    const auto& test = result.metrics["test"];
    std::cout << "test accuracy: " << 100.0 * test.value("accuracy", 0.0) << "%  95% CI ["
              << 100.0 * test["accuracy_ci95"][0].get<double>() << ", " << 100.0 * test["accuracy_ci95"][1].get<double>()
              << "]  (" << test.value("num_samples", 0) << " images)\n";
  }
  return 0;
}

const RegisterCommand kRegister({"train", "fine-tune MobileNetV2 on a labelled image folder", run_train});

}  // namespace
}  // namespace mriscan
