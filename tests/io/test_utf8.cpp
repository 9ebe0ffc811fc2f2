// UTF-8 validation (io/utf8.h): well-formed text of any script passes; each malformed shape fails and becomes '?'.
#include <gtest/gtest.h>

#include "io/utf8.h"

namespace mriscan {
namespace {

TEST(Utf8, WellFormedTextPasses) {
  for (const std::string text : {"", "glioma", "m\xc3\xa9ningiome", "\xe8\x84\x91", "\xf0\x9f\xa7\xa0"}) {
    EXPECT_TRUE(is_valid_utf8(text)) << text;
    EXPECT_EQ(printable_utf8(text), text);
  }
}

TEST(Utf8, MalformedSequencesFail) {
  const std::string cases[] = {
      "\xff",              // never a lead byte
      "\x80",              // stray continuation
      "\xc3",              // truncated
      "\xc0\xaf",          // overlong '/'
      "\xed\xa0\x80",      // surrogate U+D800
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "ok\xe8\x84",        // truncated at the end
  };
  for (const std::string& text : cases) {
    EXPECT_FALSE(is_valid_utf8(text)) << testing::PrintToString(text);
    EXPECT_TRUE(is_valid_utf8(printable_utf8(text)));
  }
  EXPECT_EQ(printable_utf8("a\xff" "b"), "a?b");
}

TEST(Utf8, ControlCharactersArePrintedAsQuestionMarks) {
  EXPECT_TRUE(is_valid_utf8("line\nforged"));  // valid UTF-8, but not for a log line
  EXPECT_EQ(printable_utf8("line\r\nforged\x7f"), "line??forged?");
}

}  // namespace
}  // namespace mriscan
