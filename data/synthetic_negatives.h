// Pictures that are not brain MRIs, generated from a seed, to fit and test the out-of-distribution check
// (infer/ood_check.h) without any image from outside the project.
//
// Five kinds, each with variants chosen by the seed, built to resemble what people actually send a classifier
// by mistake:
//   photograph  outdoor scenes (sky, sun, textured ground, trees, a house), some in greyscale, close-up textures
//   screenshot  application windows with title bars, sidebars, buttons and text, light and dark themes
//   diagram     labelled boxes joined by arrows, in colour or black on white
//   document    pages of text with a title and sometimes a table, clean or scanned-looking
//   pattern     blank (black, white, grey), noise, gradients, checkerboards, stripes, shapes on black
// Text is drawn with stb_easy_font, textures with stb_perlin. The same (kind, seed) gives the same image.
// What it is not: a data set of real photographs; real inputs can be stranger, so the check's measured rates
// on these are a floor on what it misses, not a guarantee.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/image_io.h"

namespace mriscan {

enum class NegativeKind { kPhotograph, kScreenshot, kDiagram, kDocument, kPattern };

const std::vector<NegativeKind>& all_negative_kinds();
std::string negative_kind_name(NegativeKind kind);  // "photograph", ...

// A size x size RGB image of `kind`; the seed picks the variant and every random choice within it.
Image make_negative(NegativeKind kind, uint32_t seed, int size = 224);

}  // namespace mriscan
