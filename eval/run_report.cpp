// write_run_report: turns the trainer's metrics and one inference pass into the run's PNG files.
#include "eval/run_report.h"

#include <filesystem>

#include "data/preprocess.h"
#include "eval/plot.h"
#include "infer/gradcam.h"
#include "io/image_io.h"

namespace mriscan {

namespace {

std::vector<double> history_column(const nlohmann::json& history, const char* key) {
  std::vector<double> column;
  for (const auto& epoch : history) column.push_back(epoch.value(key, 0.0));
  return column;
}

// Up to `per_class` evaluated images of each class, wrong predictions first (they are the interesting ones).
std::vector<size_t> pick_examples(const InferenceOutput& evaluated, int num_classes, int per_class) {
  const int k = num_classes;
  std::vector<size_t> wrong, right;
  for (size_t i = 0; i < evaluated.labels.size(); ++i) {
    const float* row = evaluated.logits.data() + i * k;
    (std::max_element(row, row + k) - row == evaluated.labels[i] ? right : wrong).push_back(i);
  }
  std::vector<int> taken(k, 0);
  std::vector<size_t> picked;
  for (const auto* group : {&wrong, &right})
    for (size_t i : *group)
      if (taken[evaluated.labels[i]] < per_class) {
        picked.push_back(i);
        ++taken[evaluated.labels[i]];
      }
  return picked;
}

}  // namespace

void write_run_report(const std::string& run_dir, MobileNetV2& model, int image_size,
                      const std::vector<std::string>& class_names, const nlohmann::json& metrics,
                      const InferenceOutput& evaluated) {
  namespace fs = std::filesystem;
  const fs::path dir(run_dir);
  const nlohmann::json& history = metrics.at("history");
  TrainingCurves curves{history_column(history, "train_loss"), history_column(history, "val_loss"),
                        history_column(history, "train_accuracy"), history_column(history, "val_accuracy"),
                        history_column(history, "learning_rate")};
  write_png((dir / "history.png").string(), render_training_history(curves));

  const nlohmann::json& scores = metrics.contains("test") ? metrics.at("test") : metrics.at("validation");
  const std::string split = metrics.contains("test") ? "test" : "validation";
  std::vector<int64_t> confusion;
  for (const auto& row : scores.at("confusion_matrix"))
    for (const auto& count : row) confusion.push_back(count.get<int64_t>());
  write_png((dir / "confusion_matrix.png").string(),
            render_confusion_matrix(confusion, class_names, "Confusion matrix (" + split + ")"));

  BarChart bars{.title = "Per-class scores (" + split + ")", .groups = class_names,
                .series_names = {"precision", "recall", "F1"}, .values = {{}, {}, {}}};
  for (const std::string& name : class_names) {
    const auto& c = scores.at("classes").at(name);
    bars.values[0].push_back(c.value("precision", 0.0));
    bars.values[1].push_back(c.value("recall", 0.0));
    bars.values[2].push_back(c.value("f1", 0.0));
  }
  write_png((dir / "per_class.png").string(), render_bar_chart(bars));

  // Sample images and Grad-CAM of the same picks: wrong predictions first, then correct ones.
  const int k = static_cast<int>(class_names.size());
  std::vector<GridCell> samples, cams;
  model.set_training(false);
  for (size_t i : pick_examples(evaluated, k, 2)) {
    Image image = load_image(evaluated.paths[i]);
    const float* row = evaluated.logits.data() + i * k;
    const int predicted = static_cast<int>(std::max_element(row, row + k) - row);
    const bool correct = predicted == evaluated.labels[i];
    samples.push_back({image, class_names[evaluated.labels[i]]});
    GradCam cam = grad_cam(model, preprocess_batch({image}, image_size), predicted);
    cams.push_back({overlay_heatmap(image, cam.heatmap.data(), cam.height, cam.width, 0.45f),
                    "true " + class_names[evaluated.labels[i]] + "\npred " + class_names[predicted],
                    correct ? kTextColor : Color{200, 30, 30}});
  }
  write_png((dir / "samples.png").string(), render_image_grid(samples, k, 160, "Sample images (" + split + ")"));
  write_png((dir / "gradcam.png").string(), render_image_grid(cams, k, 160, "Grad-CAM of the predicted class"));
}

}  // namespace mriscan
