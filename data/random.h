// Portable random numbers for the data pipeline: the same seed gives the same split, epoch order and augmentation
// on every machine and standard library.
//
// Why not <random>'s distributions and std::shuffle: std::mt19937 itself is fully specified by the standard, but
// std::uniform_int_distribution, std::uniform_real_distribution and std::shuffle are not (libstdc++ and libc++ give
// different numbers for the same engine state). So we draw raw 32-bit words from std::mt19937 and map them to
// ranges ourselves. What this file is not: a general RNG library; it has exactly what the data code needs.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace mriscan {

// Uniform integer in [0, n) without modulo bias (rejection of the top partial block). n must be > 0.
inline uint32_t uniform_index(std::mt19937& rng, uint32_t n) {
  const uint32_t limit = UINT32_MAX - (UINT32_MAX % n);  // draws >= limit would favour small results
  uint32_t r = static_cast<uint32_t>(rng());
  while (r >= limit) r = static_cast<uint32_t>(rng());
  return r % n;
}

// Uniform double in [0, 1) from one 32-bit draw (2^-32 resolution is plenty for augmentation parameters).
inline double uniform_unit(std::mt19937& rng) { return static_cast<uint32_t>(rng()) * (1.0 / 4294967296.0); }

inline double uniform_range(std::mt19937& rng, double lo, double hi) { return lo + (hi - lo) * uniform_unit(rng); }

// Fisher-Yates: for i from the end, swap element i with a uniformly chosen element in [0, i].
template <typename T>
void fisher_yates_shuffle(std::vector<T>& items, std::mt19937& rng) {
  for (size_t i = items.size(); i > 1; --i) {
    const uint32_t j = uniform_index(rng, static_cast<uint32_t>(i));
    std::swap(items[i - 1], items[j]);
  }
}

// SplitMix64 finaliser: a strong 64-bit mix, used to turn (seed, epoch, index) into independent stream seeds.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// An engine seeded from (seed, a, b): e.g. (seed, epoch, sample index). Each sample gets its own stream, so its
// augmentation does not depend on which worker thread handled it or in which order.
inline std::mt19937 derived_rng(uint64_t seed, uint64_t a, uint64_t b = 0) {
  const uint64_t mixed = splitmix64(splitmix64(splitmix64(seed) ^ a) ^ b);
  std::seed_seq seq{static_cast<uint32_t>(mixed), static_cast<uint32_t>(mixed >> 32)};
  return std::mt19937(seq);
}

}  // namespace mriscan
