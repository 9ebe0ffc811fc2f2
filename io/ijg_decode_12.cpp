// decode_jpeg_frame_12: io/ijg_frame.inc over GDCM's IJG build for 12 bits per sample (see io/ijg_decode.h).
#include <cstdio>  // jpeglib.h needs size_t and FILE declared before it

extern "C" {
#include <gdcmjpeg/12/jpeglib.h>
#include <gdcmjpeg/12/jerror.h>
}

#include "io/ijg_decode.h"

#define MRISCAN_IJG_DECODE decode_jpeg_frame_12
#include "io/ijg_frame.inc"
