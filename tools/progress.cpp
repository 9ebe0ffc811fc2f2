// ProgressPrinter: formats TrainProgress events for humans.
#include "tools/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace mriscan {

std::string format_duration(double seconds) {
  char text[32];
  const int s = static_cast<int>(seconds + 0.5);
  if (s >= 3600) std::snprintf(text, sizeof text, "%dh%02dm", s / 3600, s % 3600 / 60);
  else if (s >= 60) std::snprintf(text, sizeof text, "%dm%02ds", s / 60, s % 60);
  else std::snprintf(text, sizeof text, "%ds", s);
  return text;
}

void ProgressPrinter::operator()(const TrainProgress& p) {
  static const bool terminal = isatty(STDERR_FILENO);
  const double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  if (p.phase == "train") {
    const bool last = p.batch == p.batches;
    if (!terminal && !last && now - last_print_ < 5.0) return;
    last_print_ = now;
    std::fprintf(stderr, "%sepoch %d/%d  batch %d/%d  loss %.4f  acc %.2f%%  %.1f img/s  lr %.2e  ETA %s%s",
                 terminal ? "\r\033[K" : "", p.epoch, p.epochs, p.batch, p.batches, p.loss, 100.0 * p.accuracy,
                 p.images_per_second, p.learning_rate, format_duration(p.eta_seconds).c_str(),
                 terminal ? "" : "\n");
    line_open_ = terminal;
    return;
  }
  if (line_open_) std::fputc('\n', stderr);
  line_open_ = false;
  if (p.phase == "epoch") {
    const auto& s = p.epoch_summary;
    std::fprintf(stderr,
                 "epoch %d/%d done: train loss %.4f acc %.2f%% | val loss %.4f acc %.2f%% | lr %.2e | %.1f img/s | "
                 "%s%s\n",
                 p.epoch, p.epochs, s.value("train_loss", 0.0), 100 * s.value("train_accuracy", 0.0),
                 s.value("val_loss", 0.0), 100 * s.value("val_accuracy", 0.0), s.value("learning_rate", 0.0),
                 s.value("images_per_second", 0.0), format_duration(s.value("epoch_seconds", 0.0)).c_str(),
                 s.value("best", false) ? "  * best, saved" : "");
    if (s.contains("processes"))
      std::fprintf(stderr, "  data-parallel over %d processes: %.2f s waiting for gradient all-reduces, %.2f s in "
                   "batch-norm synchronisation\n",
                   s["processes"].value("count", 1), s["processes"].value("allreduce_wait_seconds", 0.0),
                   s["processes"].value("batch_norm_sync_seconds", 0.0));
  } else if (p.phase == "cache") {
    std::fprintf(stderr, "caching frozen-prefix activations: batch %d/%d\n", p.batch, p.batches);
  } else if (p.phase != "done") {
    std::fprintf(stderr, "%s...\n", p.phase.c_str());
  }
}

}  // namespace mriscan
