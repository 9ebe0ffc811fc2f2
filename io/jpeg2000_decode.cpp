// JPEG 2000 frames through OpenJPEG; see jpeg2000_decode.h.
#include "io/jpeg2000_decode.h"

#include <openjpeg.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <memory>

#include "io/image_io.h"

namespace mriscan {
namespace {

// The stream's source: the bytes and a read position.
struct Source {
  const uint8_t* data;
  size_t size, at;
};

OPJ_SIZE_T read_source(void* buffer, OPJ_SIZE_T count, void* user) {
  auto* source = static_cast<Source*>(user);
  const size_t n = std::min<size_t>(count, source->size - source->at);
  if (n == 0) return static_cast<OPJ_SIZE_T>(-1);  // OpenJPEG's end of stream
  std::memcpy(buffer, source->data + source->at, n);
  source->at += n;
  return n;
}

OPJ_OFF_T skip_source(OPJ_OFF_T count, void* user) {
  auto* source = static_cast<Source*>(user);
  if (count < 0 || static_cast<uint64_t>(count) > source->size - source->at) return -1;
  source->at += static_cast<size_t>(count);
  return count;
}

OPJ_BOOL seek_source(OPJ_OFF_T position, void* user) {
  auto* source = static_cast<Source*>(user);
  if (position < 0 || static_cast<uint64_t>(position) > source->size) return OPJ_FALSE;
  source->at = static_cast<size_t>(position);
  return OPJ_TRUE;
}

void quiet(const char*, void*) {}  // OpenJPEG's messages: not for the server's log

struct CodecDeleter {
  void operator()(opj_codec_t* codec) const { opj_destroy_codec(codec); }
};
struct StreamDeleter {
  void operator()(opj_stream_t* stream) const { opj_stream_destroy(stream); }
};
struct ImageDeleter {
  void operator()(opj_image_t* image) const { opj_image_destroy(image); }
};

}  // namespace

std::vector<uint16_t> decode_jpeg2000_frame(std::vector<uint8_t> codestream, int columns, int rows,
                                            int bits_allocated, const std::string& source_name) {
  auto fail = [&](const std::string& problem) {
    throw ImageError("cannot decode " + source_name + ": the JPEG 2000 frame " + problem);
  };
  // DICOM pads a fragment to an even length; OpenJPEG refuses bytes after the end-of-codestream marker (FFD9).
  while (!codestream.empty() && codestream.back() != 0xD9) codestream.pop_back();
  if (codestream.size() < 16) fail("has no end-of-codestream marker");
  static const uint8_t kJp2Signature[] = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};
  const bool jp2 = std::equal(std::begin(kJp2Signature), std::end(kJp2Signature), codestream.begin());
  std::unique_ptr<opj_codec_t, CodecDeleter> codec(opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K));
  opj_set_error_handler(codec.get(), quiet, nullptr);
  opj_set_warning_handler(codec.get(), quiet, nullptr);
  opj_set_info_handler(codec.get(), quiet, nullptr);
  opj_dparameters_t parameters;
  opj_set_default_decoder_parameters(&parameters);
  if (!opj_setup_decoder(codec.get(), &parameters)) fail("cannot be set up for decoding");
  Source source{codestream.data(), codestream.size(), 0};
  std::unique_ptr<opj_stream_t, StreamDeleter> stream(opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE));
  opj_stream_set_user_data(stream.get(), &source, nullptr);
  opj_stream_set_user_data_length(stream.get(), codestream.size());
  opj_stream_set_read_function(stream.get(), read_source);
  opj_stream_set_skip_function(stream.get(), skip_source);
  opj_stream_set_seek_function(stream.get(), seek_source);
  opj_image_t* raw_image = nullptr;
  const bool header = opj_read_header(stream.get(), codec.get(), &raw_image);
  std::unique_ptr<opj_image_t, ImageDeleter> image(raw_image);
  if (!header || !image) fail("has no readable header");
  // Before decoding allocates the image: its size as the data set declares it, one component, the depth.
  const opj_image_comp_t* component = image->numcomps == 1 ? image->comps : nullptr;
  if (component == nullptr || component->w != static_cast<OPJ_UINT32>(columns) ||
      component->h != static_cast<OPJ_UINT32>(rows) || component->prec < 1 ||
      component->prec > static_cast<OPJ_UINT32>(bits_allocated))
    fail("is not one component of " + std::to_string(columns) + "x" + std::to_string(rows) + " samples of at most " +
         std::to_string(bits_allocated) + " bits");
  if (!opj_decode(codec.get(), stream.get(), image.get()) || !opj_end_decompress(codec.get(), stream.get()))
    fail("cannot be decoded");
  component = image->comps;
  if (component->data == nullptr || component->w != static_cast<OPJ_UINT32>(columns) ||
      component->h != static_cast<OPJ_UINT32>(rows))
    fail("decoded to another size");
  std::vector<uint16_t> samples(static_cast<size_t>(rows) * columns);  // (rows, columns)
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = static_cast<uint16_t>(component->data[i]);
  return samples;
}

}  // namespace mriscan
