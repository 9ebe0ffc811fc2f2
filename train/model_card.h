// The model card of a trained model (Mitchell et al. 2019, "Model Cards for Model Reporting"): a Markdown page
// written as RUNDIR/MODEL_CARD.md and into the model file's metadata ("model_card"), so that every copy of the
// model, including the server's registered versions, carries it and the web UI can show it.
//
// Every figure on it comes from the run's metrics (train/final_model.h): the data and its known leakage, the
// split, Testing and de-duplicated Testing metrics, calibration, the prediction sets' coverage and size, the
// out-of-distribution check's measured behaviour, the recipe and its time. Intended use, and "not a medical device",
// are fixed text.
// What it is not: a metrics file (metrics.json has everything, machine-readable) or a regulatory document.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mriscan {

// `metrics` as write_final_model builds them ("validation", "test", "test_dedup", "temperature", "prediction_sets",
// "ood", "config", "splits", "history", "best_epoch", "train_seconds"); missing parts are said to be missing.
std::string model_card_markdown(const nlohmann::json& metrics, const std::vector<std::string>& class_names);

}  // namespace mriscan
