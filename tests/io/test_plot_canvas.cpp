// Tests of io/plot_canvas (drawing through cairo): rectangles land on exact pixels, text leaves ink where it was
// asked to and nowhere else, non-ASCII class names are drawn while malformed UTF-8 becomes '?', pasted images clip
// at every edge, and the measured text sizes grow with the scale.
#include <gtest/gtest.h>

#include <string>

#include "io/plot_canvas.h"

using namespace mriscan;

namespace {

bool is(const Image& image, int x, int y, Color c) {
  const uint8_t* p = image.pixel(x, y);
  return p[0] == c.r && p[1] == c.g && p[2] == c.b;
}

// Pixels in [x0, x1) x [y0, y1) that are not the background white.
int ink(const Image& image, int x0, int y0, int x1, int y1) {
  int count = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) count += !is(image, x, y, kWhite);
  return count;
}

}  // namespace

TEST(PlotCanvas, RectanglesCoverExactlyTheirPixels) {
  Canvas canvas(20, 10);
  canvas.fill_rect(2, 3, 6, 5, Color{200, 0, 0});
  canvas.stroke_rect(10, 1, 15, 8, kBlack);
  const Image image = canvas.to_image();
  EXPECT_EQ(ink(image, 2, 3, 6, 5), 8);
  EXPECT_TRUE(is(image, 2, 3, {200, 0, 0}) && is(image, 5, 4, {200, 0, 0}));
  EXPECT_TRUE(is(image, 1, 3, kWhite) && is(image, 6, 4, kWhite) && is(image, 3, 5, kWhite));
  // The outline: the border pixels of [10, 15) x [1, 8), nothing inside or outside.
  EXPECT_TRUE(is(image, 10, 1, kBlack) && is(image, 14, 7, kBlack) && is(image, 12, 1, kBlack));
  EXPECT_TRUE(is(image, 12, 4, kWhite) && is(image, 15, 4, kWhite) && is(image, 12, 8, kWhite));
  EXPECT_EQ(ink(image, 9, 0, 16, 9), 2 * 5 + 2 * 5);
}

TEST(PlotCanvas, TextInksItsBoxAndGrowsWithScale) {
  ASSERT_GT(text_width("Accuracy", 3), text_width("Accuracy", 2));
  ASSERT_GT(text_height(3), text_height(2));
  Canvas canvas(200, 60);
  const int w = text_width("Accuracy", 2), h = text_height(2);
  canvas.text(100, 20, "Accuracy", kTextColor, 2, Align::kCenter);
  const Image image = canvas.to_image();
  EXPECT_GT(ink(image, 100 - w / 2, 20, 100 + w / 2 + 1, 20 + h), 30);
  EXPECT_EQ(ink(image, 0, 0, 200, 18), 0);  // nothing above its top edge
  EXPECT_EQ(ink(image, 0, 20 + h + 2, 200, 60), 0);
}

TEST(PlotCanvas, NonAsciiNamesAreDrawnAndMalformedBytesBecomeQuestionMarks) {
  EXPECT_NE(text_width("m\xC3\xA9ningiome", 2), text_width("m??ningiome", 2));  // one glyph, not two '?'
  EXPECT_EQ(text_width("a\xFF" "b", 2), text_width("a?b", 2));                    // a stray byte
  EXPECT_EQ(text_width("a\xC3", 2), text_width("a?", 2));                         // a truncated sequence
  EXPECT_EQ(text_width("a\xC0\xAF", 2), text_width("a??", 2));                    // an overlong '/'
  Canvas canvas(120, 40);
  canvas.text(4, 4, "a\xFF\xC3" "b \xE2\x9C\x93", kBlack, 2);  // a context in an error state would throw below
  EXPECT_GT(ink(canvas.to_image(), 0, 0, 120, 40), 10);
}

TEST(PlotCanvas, PastedImagesClipAtEveryEdge) {
  Image square(4, 4);
  for (uint8_t& v : square.rgb) v = 7;
  Canvas canvas(6, 6);
  canvas.paste(square, -2, -1);  // shows its bottom-right 2 x 3
  canvas.paste(square, 4, 4);    // shows its top-left 2 x 2
  canvas.paste(square, 10, 0);   // entirely outside
  const Image image = canvas.to_image();
  EXPECT_EQ(ink(image, 0, 0, 6, 6), 2 * 3 + 2 * 2);
  EXPECT_TRUE(is(image, 1, 2, {7, 7, 7}) && is(image, 5, 5, {7, 7, 7}));
  EXPECT_TRUE(is(image, 2, 0, kWhite) && is(image, 0, 3, kWhite) && is(image, 3, 4, kWhite));
}
