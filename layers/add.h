// Residual add: y = a + b for two Vars of the same shape (MobileNetV2's skip connection, x + block(x)).
//
//   forward:  y  = a + b
//   backward: da += dy,  db += dy        (each input gets the whole upstream gradient)
// When a and b are the same Var, or one feeds the other through the block, the tape's `+=` accumulation sums
// the paths; nothing special is needed here. Shapes must match exactly (no broadcasting): a mismatch throws
// std::invalid_argument naming both shapes. What it is not: a general broadcasting add; a Layer (it has no
// state, so it is a free function).
#pragma once

#include "engine/tape.h"

namespace mriscan {

// a, b (same shape) -> a + b, recorded on `tape` as "add".
Var add(Tape& tape, const Var& a, const Var& b);

}  // namespace mriscan
