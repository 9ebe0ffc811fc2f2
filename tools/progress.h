// Progress display for long commands: one line per batch on stderr (rewritten in place on a terminal, printed
// every few seconds otherwise, so CI logs stay readable), and a summary line per epoch.
// What it is not: the progress events themselves (TrainProgress, train/trainer.h) or the JSON summaries of a run.
#pragma once

#include <string>

#include "train/trainer.h"

namespace mriscan {

class ProgressPrinter {
 public:
  void operator()(const TrainProgress& progress);

 private:
  double last_print_ = -1e9;
  bool line_open_ = false;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s"

}  // namespace mriscan
