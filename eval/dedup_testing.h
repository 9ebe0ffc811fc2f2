// Testing without its copies of Training: the rows of an evaluation on Testing whose image has no exact or near copy
// in the dataset's Training split (data/data_check.h), for the de-duplicated figure beside the official one. The
// dataset's Testing holds byte-identical and re-encoded copies of Training scans, which inflate what a model
// trained on Training scores there.
// What it is not: the duplicate search itself (data/data_check.h) or `mriscan data check`'s list file, which holds
// the same images for `mriscan eval --only`.
#pragma once

#include <optional>
#include <string>

#include "infer/inference.h"

namespace mriscan {

// The rows of `test` (an evaluation of data_dir's Testing) kept in the de-duplicated subset; nullopt when
// `data_dir` has no Training and Testing folders.
std::optional<InferenceOutput> without_training_copies(const InferenceOutput& test, const std::string& data_dir);

}  // namespace mriscan
