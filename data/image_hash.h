// Perceptual fingerprints for finding near-duplicate images (byte-identical files are data/content_hash.h).
//
// perceptual_hash (pHash, as in the `imagehash` Python package): shrink to 32x32 grey (area average for 224 px
// inputs, io/image_io.h), take the 2-D DCT-II, keep the 8x8 lowest frequencies and set bit (u * 8 + v) when
// coefficient (u, v) is above the median of the 64. Low frequencies describe the coarse layout of the slice, so
// re-encoding, mild blur, brightness/contrast changes flip few bits, while a different scan flips many.
// Near-duplicates are pairs with Hamming distance <= a small threshold (4 by default).
// Why not the simpler dHash (sign of horizontal gradients on a 9x8 thumbnail): on this MRI dataset, where every
// slice is a bright oval on black, dHash <= 4 paired ~16,000 images including 1,690 pairs across classes; pHash
// <= 4 gives ~6,400 pairs (most byte- or pixel-identical) and 34 across classes.
// Confirmation: dHash and pHash both only see the coarse layout, and brain slices share it, so a small Hamming
// distance also pairs different scans (we saw a glioma T1 slice at distance 2 from a CT slice filed as notumor).
// thumbnail_correlation confirms a candidate pair: Pearson correlation of the 32x32 grey thumbnails, insensitive
// to brightness and contrast like the hash. Re-encoded copies score > 0.99, adjacent slices of one patient ~0.9,
// those false pairs < 0.9 (measured on the Kaggle brain-tumour set).
// What it is not: robust to crops, rotations or flips (an augmented copy is a different image here).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "io/image_io.h"

namespace mriscan {

uint64_t perceptual_hash(const Image& image);

// 32x32 grey thumbnail with zero mean and unit L2 norm, (32 * 32); all zeros for a constant image.
std::vector<float> normalized_thumbnail(const Image& image);
// Pearson correlation of two normalized thumbnails, in [-1, 1] (their dot product).
float thumbnail_correlation(const std::vector<float>& a, const std::vector<float>& b);

inline int hamming_distance(uint64_t a, uint64_t b) { return std::popcount(a ^ b); }

}  // namespace mriscan
