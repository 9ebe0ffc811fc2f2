// The allocation-free walk of a DICOM Part 10 file; see dicom_structure.h.
//
// Encoding (PS3.5 7.1): an element is a tag (group, element: two 16-bit numbers), in explicit VR a two-letter VR,
// then a value length: 16 bits after most VRs, 32 bits after two reserved bytes for the long ones (OB, SQ, UN...);
// in implicit VR no VR and always 32 bits. Items and delimiters (group FFFE) are always tag + 32-bit length. A length
// of FFFFFFFF is "undefined": the value runs to a delimiter; only sequences, a UN that holds a sequence (then
// encoded in implicit VR little endian, PS3.5 6.2.2) and compressed pixel data may use it.
#include "io/dicom_structure.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>

#include "io/image_io.h"

namespace mriscan {
namespace {

constexpr uint32_t kUndefined = 0xFFFFFFFFu;
constexpr uint32_t kItem = 0xFFFEE000u, kItemEnd = 0xFFFEE00Du, kSequenceEnd = 0xFFFEE0DDu;
constexpr uint32_t kPixelData = 0x7FE00010u;
constexpr uint32_t kModalityLut = 0x00283000u, kVoiLut = 0x00283010u;
constexpr size_t kMaxTextValue = 1024;  // DS, CS values are short; more is not read
constexpr uint32_t kTransferSyntaxUid = 0x00020010u;

struct Encoding {
  bool implicit;
  bool little;
};

struct Head {
  uint32_t tag = 0;
  char vr[2] = {0, 0};  // explicit VR only
  uint32_t length = 0;
  size_t value = 0;  // offset of the value
};

std::string tag_name(uint32_t tag) {
  char text[16];
  std::snprintf(text, sizeof(text), "(%04X,%04X)", tag >> 16, tag & 0xFFFFu);
  return text;
}

// The VRs with a 16-bit length (PS3.5 table 7.1-2); every other one, an unknown VR included, has the 32-bit form
// (the standard's rule for VRs added later, which GDCM and other readers follow: reading a 16-bit length there, as
// an early version of this walk did, checks a different length than the one such a reader allocates).
bool long_form_vr(const char vr[2]) {
  static const char* kShort[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO",
                                 "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"};
  return std::none_of(std::begin(kShort), std::end(kShort), [&](const char* v) { return std::memcmp(v, vr, 2) == 0; });
}

bool vr_is(const Head& head, const char* vr) { return std::memcmp(head.vr, vr, 2) == 0; }

class Walker {
 public:
  Walker(const uint8_t* bytes, size_t size, const std::string& source, DicomStructure& out)
      : bytes_(bytes), size_(size), source_(source), out_(out) {}

  // The file meta information (always explicit VR little endian) from byte 132; returns where the data set starts.
  size_t file_meta() {
    size_t at = 132;
    std::string syntax;
    bool found = false;
    while (at < size_ && size_ - at >= 4 && u16(at, true) == 0x0002) {
      const Head head = read_head(at, size_, {false, true});
      if (head.length == kUndefined) fail("file meta element " + tag_name(head.tag) + " has an undefined length");
      require_fits(head, size_);
      if (head.tag == kTransferSyntaxUid && !found) {
        syntax.assign(reinterpret_cast<const char*>(bytes_ + head.value), std::min<size_t>(head.length, 80));
        found = true;
      }
      at = head.value + head.length;
    }
    if (!found) fail("no Transfer Syntax UID (0002,0010) in the file meta information");
    out_.syntax = &require_accepted_transfer_syntax(syntax, source_);
    return at;
  }

  void data_set(size_t at) {
    const DicomEncoding encoding = out_.syntax->encoding;
    walk_data_set(at, size_, 0, {encoding == DicomEncoding::kImplicitLittle, encoding != DicomEncoding::kExplicitBig},
                  false);
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw ImageError("cannot decode " + source_ + ": malformed DICOM: " + problem);
  }

  uint16_t u16(size_t at, bool little) const {
    return little ? uint16_t(bytes_[at] | bytes_[at + 1] << 8) : uint16_t(bytes_[at] << 8 | bytes_[at + 1]);
  }
  uint32_t u32(size_t at, bool little) const {
    return little ? uint32_t{u16(at, true)} | uint32_t{u16(at + 2, true)} << 16
                  : uint32_t{u16(at, false)} << 16 | uint32_t{u16(at + 2, false)};
  }
  uint32_t tag_at(size_t at, bool little) const { return uint32_t{u16(at, little)} << 16 | u16(at + 2, little); }

  void count() {
    if (++out_.elements > kMaxDicomElements)
      fail("more than " + std::to_string(kMaxDicomElements) + " elements (the limit)");
  }

  Head read_head(size_t at, size_t end, Encoding encoding) {
    if (end - at < 8) fail("the data ends inside an element header at byte " + std::to_string(at));
    Head head;
    head.tag = tag_at(at, encoding.little);
    if (encoding.implicit || head.tag >> 16 == 0xFFFE) {
      head.length = u32(at + 4, encoding.little);
      head.value = at + 8;
      return head;
    }
    std::memcpy(head.vr, bytes_ + at + 4, 2);
    if (head.vr[0] < 'A' || head.vr[0] > 'Z' || head.vr[1] < 'A' || head.vr[1] > 'Z')
      fail("element " + tag_name(head.tag) + " at byte " + std::to_string(at) + " has no valid VR");
    if (!long_form_vr(head.vr)) {
      head.length = u16(at + 6, encoding.little);
      head.value = at + 8;
      return head;
    }
    if (end - at < 12) fail("the data ends inside the header of element " + tag_name(head.tag));
    head.length = u32(at + 8, encoding.little);
    head.value = at + 12;
    return head;
  }

  // The check that keeps a decoder from allocating what is not there.
  void require_fits(const Head& head, size_t end) const {
    if (head.length > end - head.value)
      fail("element " + tag_name(head.tag) + " declares " + std::to_string(head.length) + " bytes but only " +
           std::to_string(end - head.value) + " remain" + (end == size_ ? " in the file" : " in its item"));
  }

  // Elements from `at` to `end`, or to an item delimiter when `until_item_end`; returns the position after.
  size_t walk_data_set(size_t at, size_t end, int depth, Encoding encoding, bool until_item_end) {
    for (;;) {
      if (at == end) {
        if (until_item_end) fail("an item of undefined length has no item delimiter before the end of the data");
        return at;
      }
      const Head head = read_head(at, end, encoding);
      count();
      if (head.tag == kItemEnd) {
        if (!until_item_end) fail("an item delimiter (FFFE,E00D) outside an item of undefined length");
        return head.value;
      }
      if (head.tag >> 16 == 0xFFFE) fail("item tag " + tag_name(head.tag) + " outside a sequence");
      if (depth == 0 && head.tag == kModalityLut) out_.has_modality_lut = true;
      if (head.length == kUndefined) {
        at = walk_undefined_length(head, end, depth, encoding);
        continue;
      }
      require_fits(head, end);
      if (holds_items(head, encoding))
        walk_items(head.value, head.value + head.length, depth + 1, nested_encoding(head, encoding), head.tag, false);
      if (depth == 0) record(head, encoding);
      if (depth == 1 && in_first_voi_lut_item_) record_voi_lut(head, encoding);
      at = head.value + head.length;
    }
  }

  // A sequence of undefined length, or compressed pixel data.
  size_t walk_undefined_length(const Head& head, size_t end, int depth, Encoding encoding) {
    if (head.tag == kPixelData && !encoding.implicit && (vr_is(head, "OB") || vr_is(head, "OW"))) {
      // Fragments are compressed frames: under an uncompressed syntax no decoder would know where the pixels are.
      if (depth == 0 && !out_.syntax->encapsulated)
        fail("the pixel data is in fragments, which only a compressed transfer syntax has");
      return walk_fragments(head.value, end, depth == 0);
    }
    if (!encoding.implicit && !vr_is(head, "SQ") && !vr_is(head, "UN"))
      fail("element " + tag_name(head.tag) + " of VR " + std::string(head.vr, 2) + " has an undefined length");
    return walk_items(head.value, end, depth + 1, nested_encoding(head, encoding), head.tag, true);
  }

  // A UN value that is a sequence is encoded in implicit VR little endian (PS3.5 6.2.2).
  static Encoding nested_encoding(const Head& head, Encoding encoding) {
    return !encoding.implicit && vr_is(head, "UN") ? Encoding{true, true} : encoding;
  }

  // An explicit SQ; or a defined-length value whose encoding does not say (implicit VR, UN) that starts with an
  // item tag, which other readers (GDCM) read as a sequence too.
  bool holds_items(const Head& head, Encoding encoding) const {
    if (!encoding.implicit && vr_is(head, "SQ")) return true;
    if (head.tag == kPixelData || (!encoding.implicit && !vr_is(head, "UN"))) return false;  // pixels start anyhow
    const bool little = nested_encoding(head, encoding).little;
    return head.length >= 8 && tag_at(head.value, little) == kItem;
  }

  // The items of sequence `parent`: from `at` to `end`, or to a sequence delimiter when `until_sequence_end`.
  size_t walk_items(size_t at, size_t end, int depth, Encoding encoding, uint32_t parent, bool until_sequence_end) {
    if (depth > kMaxDicomNesting)
      fail("sequences nested deeper than " + std::to_string(kMaxDicomNesting) + " levels (the limit)");
    for (size_t index = 0;; ++index) {
      if (at == end) {
        if (until_sequence_end) fail("sequence " + tag_name(parent) + " has no sequence delimiter before the end");
        return at;
      }
      if (end - at < 8) fail("the data ends inside an item header of sequence " + tag_name(parent));
      const uint32_t tag = tag_at(at, encoding.little);
      const uint32_t length = u32(at + 4, encoding.little);
      count();
      if (tag == kSequenceEnd && until_sequence_end) return at + 8;
      if (tag != kItem) fail("sequence " + tag_name(parent) + " holds " + tag_name(tag) + " where an item must be");
      const bool outer = in_first_voi_lut_item_;  // restored after the item: items nest
      in_first_voi_lut_item_ = parent == kVoiLut && depth == 1 && index == 0;
      if (length == kUndefined) {
        at = walk_data_set(at + 8, end, depth, encoding, true);
      } else {
        require_fits({tag, {0, 0}, length, at + 8}, end);
        walk_data_set(at + 8, at + 8 + length, depth, encoding, false);
        at += 8 + size_t{length};
      }
      in_first_voi_lut_item_ = outer;
    }
  }

  // Compressed pixel data (PS3.5 A.4): a basic offset table item, fragment items, a sequence delimiter; always
  // little endian.
  size_t walk_fragments(size_t at, size_t end, bool top_level) {
    uint64_t fragment_bytes = 0;
    std::vector<DicomStructure::Fragment> fragments;
    for (size_t index = 0;; ++index) {
      if (end - at < 8) fail("the compressed pixel data ends before its sequence delimiter");
      const uint32_t tag = tag_at(at, true), length = u32(at + 4, true);
      count();
      if (tag == kSequenceEnd) {
        if (top_level && !out_.has_pixel_data) {
          out_.has_pixel_data = true;
          out_.pixel_data_length = fragment_bytes;
          out_.fragments = std::move(fragments);
        }
        return at + 8;
      }
      if (tag != kItem) fail("the compressed pixel data holds " + tag_name(tag) + " where a fragment must be");
      if (length == kUndefined) fail("a compressed pixel data fragment has an undefined length");
      require_fits({tag, {0, 0}, length, at + 8}, end);
      if (index > 0) {  // index 0 is the basic offset table
        fragment_bytes += length;
        if (top_level) fragments.push_back({at + 8, length});
      }
      at += 8 + size_t{length};
    }
  }

  // The top-level attributes the decoder checks; the first of a repeated tag counts.
  void record(const Head& head, Encoding encoding) {
    if (!recorded_.insert(head.tag).second) return;
    auto us = [&](int& field, const char* name) {
      if (head.length != 2) fail(std::string(name) + " " + tag_name(head.tag) + " is not one 16-bit value");
      field = u16(head.value, encoding.little);
    };
    switch (head.tag) {
      case 0x00280002u: us(out_.samples_per_pixel, "Samples per Pixel"); break;
      case 0x00280010u: us(out_.rows, "Rows"); break;
      case 0x00280011u: us(out_.columns, "Columns"); break;
      case 0x00280100u: us(out_.bits_allocated, "Bits Allocated"); break;
      case 0x00280101u: us(out_.bits_stored, "Bits Stored"); break;
      case 0x00280102u: us(out_.high_bit, "High Bit"); break;
      case 0x00280103u: us(out_.pixel_representation, "Pixel Representation"); break;
      case 0x00280008u: record_frames(head); break;
      case 0x00280004u: out_.photometric = text(head); break;
      case 0x00281050u: out_.window_center = text(head); break;
      case 0x00281051u: out_.window_width = text(head); break;
      case 0x00281056u: out_.voi_lut_function = text(head); break;
      case 0x00281052u: out_.rescale_intercept = text(head); break;
      case 0x00281053u: out_.rescale_slope = text(head); break;
      case kPixelData:
        if (out_.syntax->encapsulated)
          fail("the pixel data has a defined length, but the transfer syntax compresses it");
        if (!out_.has_pixel_data) {
          out_.has_pixel_data = true;
          out_.pixel_data_length = head.length;
          out_.pixel_data_offset = head.value;
        }
        break;
      default: break;
    }
  }

  std::string text(const Head& head) const {
    const size_t length = std::min<size_t>(head.length, kMaxTextValue);
    return std::string(reinterpret_cast<const char*>(bytes_ + head.value), length);
  }

  // LUT Descriptor and LUT Data of the first VOI LUT item.
  void record_voi_lut(const Head& head, Encoding encoding) {
    const std::string value(reinterpret_cast<const char*>(bytes_ + head.value), head.length);
    if (head.tag == 0x00283002u && out_.lut_descriptor.empty()) out_.lut_descriptor = value;
    if (head.tag == 0x00283006u && out_.lut_data.empty()) out_.lut_data = value;
    out_.lut_little = encoding.little;
  }

  // Number of Frames is an IS: up to 12 characters, digits with an optional sign, padded with spaces.
  void record_frames(const Head& head) {
    std::string text(reinterpret_cast<const char*>(bytes_ + head.value), std::min<size_t>(head.length, 16));
    text.erase(0, text.find_first_not_of(" \0", 0, 2));
    text.erase(text.find_last_not_of(" \0", std::string::npos, 2) + 1);
    if (!text.empty() && text[0] == '+') text.erase(0, 1);
    if (text.empty() || text.size() > 12 || !std::all_of(text.begin(), text.end(), [](char c) {
          return c >= '0' && c <= '9';
        }))
      fail("Number of Frames (0028,0008) is not a non-negative integer");
    out_.frames = std::stoll(text);
  }

  const uint8_t* bytes_;
  size_t size_;
  const std::string& source_;
  DicomStructure& out_;
  std::set<uint32_t> recorded_;  // top-level tags seen
  bool in_first_voi_lut_item_ = false;
};

}  // namespace

bool is_dicom_part10(const uint8_t* bytes, size_t size) {
  return bytes != nullptr && size >= 132 && std::memcmp(bytes + 128, "DICM", 4) == 0;
}

DicomStructure walk_dicom_structure(const uint8_t* bytes, size_t size, const std::string& source) {
  if (!is_dicom_part10(bytes, size)) throw ImageError("cannot decode " + source + ": not a DICOM Part 10 file");
  DicomStructure out;
  Walker walker(bytes, size, source, out);
  walker.data_set(walker.file_meta());
  return out;
}

}  // namespace mriscan
