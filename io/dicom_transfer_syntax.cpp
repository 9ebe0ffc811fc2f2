// The transfer syntax table; see dicom_transfer_syntax.h.
#include "io/dicom_transfer_syntax.h"

#include <algorithm>
#include <iterator>

#include "io/image_io.h"

namespace mriscan {
namespace {

constexpr DicomEncoding kImplicit = DicomEncoding::kImplicitLittle;
constexpr DicomEncoding kLittle = DicomEncoding::kExplicitLittle;
constexpr DicomEncoding kBig = DicomEncoding::kExplicitBig;

// Accepted first, then the standard's others that a scanner or archive may send, so that a refusal names them.
constexpr TransferSyntax kTable[] = {
    {"1.2.840.10008.1.2", "Implicit VR Little Endian", kImplicit, false, true},
    {"1.2.840.10008.1.2.1", "Explicit VR Little Endian", kLittle, false, true},
    {"1.2.840.10008.1.2.2", "Explicit VR Big Endian", kBig, false, true},
    {"1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", kLittle, true, true},
    {"1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", kLittle, true, true},
    {"1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", kLittle, true, true},
    {"1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 SV1)", kLittle,
     true, true},
    {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", kLittle, true, true},
    {"1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless)", kLittle, true, true},
    {"1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)", kLittle, true, true},
    {"1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression", kLittle, true, true},
    {"1.2.840.10008.1.2.5", "RLE Lossless", kLittle, true, true},
    {"1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian", kLittle, true, false},
    {"1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", kLittle, false, false},
    {"1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)", kLittle, true,
     false},
    {"1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component Image Compression", kLittle, true, false},
    {"1.2.840.10008.1.2.4.94", "JPIP Referenced", kLittle, true, false},
    {"1.2.840.10008.1.2.4.95", "JPIP Referenced Deflate", kLittle, true, false},
    {"1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", kLittle, true, false},
    {"1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level", kLittle, true, false},
    {"1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1", kLittle, true, false},
    {"1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", kLittle, true, false},
    {"1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", kLittle, true, false},
    {"1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", kLittle, true, false},
    {"1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", kLittle, true, false},
    {"1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1", kLittle, true, false},
    {"1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1", kLittle, true, false},
    {"1.2.840.10008.1.2.4.110", "JPEG XL Lossless", kLittle, true, false},
    {"1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression", kLittle, true, false},
    {"1.2.840.10008.1.2.4.112", "JPEG XL", kLittle, true, false},
    {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Image Compression (Lossless Only)", kLittle, true, false},
    {"1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)",
     kLittle, true, false},
    {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression", kLittle, true, false},
    {"1.2.840.10008.1.2.6.1", "RFC 2557 MIME encapsulation", kLittle, false, false},
};

// A UI value is padded to an even length with NUL; some writers pad with a space.
std::string without_padding(std::string uid) {
  while (!uid.empty() && (uid.back() == '\0' || uid.back() == ' ')) uid.pop_back();
  return uid;
}

// PS3.5 9.1: digits and dots, at most 64 characters. Only such a value is quoted in a message.
bool well_formed_uid(const std::string& uid) {
  return !uid.empty() && uid.size() <= 64 &&
         std::all_of(uid.begin(), uid.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

}  // namespace

const TransferSyntax* find_transfer_syntax(const std::string& uid) {
  const std::string bare = without_padding(uid);
  const auto found = std::find_if(std::begin(kTable), std::end(kTable),
                                  [&](const TransferSyntax& syntax) { return bare == syntax.uid; });
  return found == std::end(kTable) ? nullptr : found;
}

const TransferSyntax& require_accepted_transfer_syntax(const std::string& uid, const std::string& source) {
  const TransferSyntax* syntax = find_transfer_syntax(uid);
  if (syntax != nullptr && syntax->accepted) return *syntax;
  const std::string bare = without_padding(uid);
  const std::string named = syntax != nullptr ? std::string(syntax->uid) + " (" + syntax->name + ")"
                            : well_formed_uid(bare) ? bare + " (not a transfer syntax this server knows)"
                                                    : std::string("(a malformed UID)");
  throw UnsupportedImageFormat(
      "cannot decode " + source + ": DICOM transfer syntax " + named +
      " is not accepted; accepted: uncompressed (implicit or explicit VR, little or big endian), JPEG baseline, "
      "extended and lossless, JPEG-LS, JPEG 2000 and RLE");
}

}  // namespace mriscan
