#!/usr/bin/env python3
"""DICOM test files, made at test time from one 8-bit grey image (a binary PGM), for tests/io/test_dicom_image.cpp
and the server tests: every kind io/dicom_image.h accepts, each built so that its expected 8-bit output is known
(mostly the source pixels themselves: the window of each file maps its stored values back onto them), the kinds it
refuses, and the malformed files. Uncompressed files are written with pydicom; compressed ones are converted from
them with GDCM's gdcmconv, as a scanner's archive would.

Usage: make_dicom_fixtures.py SOURCE.pgm OUT_DIR
Writes OUT_DIR/<name>.dcm, OUT_DIR/expected/<name>.pgm and OUT_DIR/manifest.json: a list of
  {"name", "file", "expected" (a PGM path or null), "max_difference", "mean_difference",   # accepted files
   "error" (a substring of the message), "unsupported" (415 rather than 400),              # refused files
   "markers" (identifying strings written into the file)}.
Exits 77 when pydicom is missing (the tests skip). Compressed kinds are left out when gdcmconv is missing.
What it is not: a test (the C++ tests decode and compare) or an implementation of the windowing beyond the few
numpy lines that give the expected pixels of the sigmoid and percentile cases independently.
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys

try:
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian
except ImportError as error:
    print("make_dicom_fixtures: %s (install python3-pydicom)" % error, file=sys.stderr)
    sys.exit(77)

MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
DEFLATED = "1.2.840.10008.1.2.1.99"
MPEG2 = "1.2.840.10008.1.2.4.100"


def read_pgm(path):
    with open(path, "rb") as f:
        data = f.read()
    fields, at = [], 0
    while len(fields) < 4:  # magic, width, height, maxval: whitespace-separated
        while data[at:at + 1].isspace():
            at += 1
        end = at
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[at:end])
        at = end
    width, height = int(fields[1]), int(fields[2])
    return np.frombuffer(data[at + 1:at + 1 + width * height], dtype=np.uint8).reshape(height, width)


def write_pgm(path, pixels):
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (pixels.shape[1], pixels.shape[0]))
        f.write(pixels.astype(np.uint8).tobytes())


def base_dataset(pixels, sop_class, syntax, bits_allocated, bits_stored, signed):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.543.1.1"
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.543.99"
    ds = Dataset()
    ds.file_meta = meta
    ds.is_little_endian = syntax != ExplicitVRBigEndian
    ds.is_implicit_VR = syntax == ImplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR" if sop_class == MR_STORAGE else "OT"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    return ds


def set_pixels(ds, stored):
    """stored: (rows, columns) integers, written in the data set's byte order and Bits Allocated."""
    kind = {(8, 0): "u1", (8, 1): "i1", (16, 0): "u2", (16, 1): "i2"}[(ds.BitsAllocated, ds.PixelRepresentation)]
    order = "<" if ds.is_little_endian else ">"
    ds.PixelData = stored.astype(order + kind).tobytes()
    ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"


def save(ds, path):
    ds.save_as(path, write_like_original=False)


def window_of(a, b, exact=False):
    """The window that maps a * P + b back onto P (docs/dicom.md): LINEAR needs w - 1 = 255 a and
    c - 0.5 = b + 127.5 a; LINEAR_EXACT w = 255 a and c = b + 127.5 a."""
    if exact:
        return b + 127.5 * a, 255.0 * a
    return b + 127.5 * a + 0.5, 255.0 * a + 1.0


def ds_text(value):
    text = ("%.4f" % value).rstrip("0").rstrip(".")
    return text if text != "-0" else "0"


class Fixtures:
    def __init__(self, source, out):
        self.p = source.astype(np.int64)  # P: (rows, columns) in 0..255
        self.out = out
        self.manifest = []
        os.makedirs(os.path.join(out, "expected"), exist_ok=True)

    def path(self, name):
        return os.path.join(self.out, name + ".dcm")

    def accepted(self, name, ds, expected=None, max_difference=0, mean_difference=0.0, **extra):
        save(ds, self.path(name))
        self.record(name, expected, max_difference, mean_difference, **extra)

    def record(self, name, expected=None, max_difference=0, mean_difference=0.0, **extra):
        expected = self.p if expected is None else expected
        write_pgm(os.path.join(self.out, "expected", name + ".pgm"), expected)
        self.manifest.append(dict(name=name, file=self.path(name), expected=os.path.join(self.out, "expected",
                                  name + ".pgm"), max_difference=max_difference, mean_difference=mean_difference,
                                  **extra))

    def refused(self, name, data, error, unsupported=False):
        with open(self.path(name), "wb") as f:
            f.write(data if isinstance(data, bytes) else b"")
        self.manifest.append(dict(name=name, file=self.path(name), expected=None, error=error,
                                  unsupported=unsupported))

    def bytes_of(self, ds):
        from io import BytesIO
        buffer = BytesIO()
        ds.save_as(buffer, write_like_original=False)
        return buffer.getvalue()

    # A 16-bit unsigned MR image: stored = 16 P + 100 with the LINEAR window that maps it back onto P.
    def mr16(self, syntax=ExplicitVRLittleEndian):
        ds = base_dataset(self.p, MR_STORAGE, syntax, 16, 16, False)
        set_pixels(ds, 16 * self.p + 100)
        c, w = window_of(16, 100)
        ds.WindowCenter, ds.WindowWidth = ds_text(c), ds_text(w)
        return ds


def write_uncompressed(f):
    p = f.p
    # 8-bit secondary capture without a window: shown as stored.
    sc = base_dataset(p, SECONDARY_CAPTURE, ExplicitVRLittleEndian, 8, 8, False)
    set_pixels(sc, p)
    f.accepted("sc8", sc)
    # 8-bit signed: stored = P - 128, window (0, 256).
    s8 = base_dataset(p, MR_STORAGE, ExplicitVRLittleEndian, 8, 8, True)
    set_pixels(s8, p - 128)
    s8.WindowCenter, s8.WindowWidth = [ds_text(v) for v in window_of(1, -128)]
    f.accepted("mr8_signed", s8)
    f.accepted("mr16_window", f.mr16())
    f.accepted("mr16_implicit", f.mr16(ImplicitVRLittleEndian))
    # 12 bits stored in 16, unsigned, with bits set above the high bit (an old overlay plane): masked off.
    u12 = base_dataset(p, MR_STORAGE, ExplicitVRLittleEndian, 16, 12, False)
    set_pixels(u12, (16 * p) | 0xF000)
    u12.WindowCenter, u12.WindowWidth = [ds_text(v) for v in window_of(16, 0)]
    f.accepted("mr12_unsigned", u12)
    # 12 bits signed, sign-extended in 16 as scanners write it: stored = 8 P - 1020.
    s12 = base_dataset(p, MR_STORAGE, ExplicitVRLittleEndian, 16, 12, True)
    set_pixels(s12, 8 * p - 1020)
    s12.WindowCenter, s12.WindowWidth = [ds_text(v) for v in window_of(8, -1020)]
    f.accepted("mr12_signed", s12)
    # 16-bit signed with a rescale: modality = 2 stored - 1000 = 16 P - 3000 when stored = 8 P - 1000.
    rescaled = base_dataset(p, MR_STORAGE, ExplicitVRLittleEndian, 16, 16, True)
    set_pixels(rescaled, 8 * p - 1000)
    rescaled.RescaleSlope, rescaled.RescaleIntercept = "2", "-1000"
    rescaled.WindowCenter, rescaled.WindowWidth = [ds_text(v) for v in window_of(16, -3000)]
    f.accepted("mr16_signed_rescale", rescaled)
    big = base_dataset(p, MR_STORAGE, ExplicitVRBigEndian, 16, 16, True)
    set_pixels(big, 8 * p - 1000)
    big.RescaleSlope, big.RescaleIntercept = "2", "-1000"
    big.WindowCenter, big.WindowWidth = [ds_text(v) for v in window_of(16, -3000)]
    f.accepted("mr16_big_endian", big)
    # MONOCHROME1: stored from 255 - P, so the window gives 255 - P and the inversion P.
    inverted = f.mr16()
    set_pixels(inverted, 16 * (255 - p) + 100)
    inverted.PhotometricInterpretation = "MONOCHROME1"
    f.accepted("mr16_monochrome1", inverted)
    exact = f.mr16()
    exact.WindowCenter, exact.WindowWidth = [ds_text(v) for v in window_of(16, 100, exact=True)]
    exact.VOILUTFunction = "LINEAR_EXACT"
    f.accepted("mr16_linear_exact", exact)
    write_windowless(f)


def write_windowless(f):
    p = f.p
    # SIGMOID around the middle of the range: y = 255 / (1 + exp(-4 (x - c) / w)).
    sigmoid = f.mr16()
    sigmoid.WindowCenter, sigmoid.WindowWidth, sigmoid.VOILUTFunction = "2140", "4080", "SIGMOID"
    x = 16.0 * p + 100
    f.accepted("mr16_sigmoid", sigmoid, np.floor(255.0 / (1 + np.exp(-4 * (x - 2140) / 4080)) + 0.5), 1)
    # A VOI LUT and no window: entries from modality value 100, 16 bits each, entry i = (i / 16) * 257.
    lut = f.mr16()
    del lut.WindowCenter, lut.WindowWidth
    entries = 16 * 255 + 1
    item = Dataset()
    item.LUTDescriptor = [entries, 100, 16]
    item.LUTData = [(i // 16) * 257 for i in range(entries)]
    item["LUTData"].VR = "US"
    lut.VOILUTSequence = Sequence([item])
    f.accepted("mr16_voi_lut", lut)
    big_lut = base_dataset(p, MR_STORAGE, ExplicitVRBigEndian, 16, 16, False)
    set_pixels(big_lut, 16 * p + 100)
    big_lut.VOILUTSequence = Sequence([item])
    f.accepted("mr16_voi_lut_big_endian", big_lut)
    # No window and no LUT: the 0.5th-99.5th percentile window of the modality values.
    plain = f.mr16()
    del plain.WindowCenter, plain.WindowWidth
    x = np.sort((16 * p + 100).ravel()).astype(np.float64)
    last = x.size - 1
    lo, hi = x[int(math.floor(0.005 * last))], x[int(math.ceil(0.995 * last))]
    c, w = (lo + hi) / 2, hi - lo
    values = 16.0 * p + 100
    expected = np.where(values <= c - w / 2, 0, np.where(values > c + w / 2, 255,
                                                         np.floor(((values - c) / w + 0.5) * 255 + 0.5)))
    f.accepted("mr16_percentile", plain, expected, 1)


def gdcmconv(f, name, source, options, syntax, max_difference=0, mean_difference=0.0):
    output = f.path(name)
    subprocess.run(["gdcmconv"] + options + [f.path(source), output], check=True, stdout=subprocess.DEVNULL)
    ds = pydicom.dcmread(output)
    if syntax is not None and ds.file_meta.TransferSyntaxUID != syntax:
        ds.file_meta.TransferSyntaxUID = syntax  # a relabelling the stream allows (4.70 is a kind of 4.57)
        save(ds, output)
    f.record(name, None, max_difference, mean_difference, syntax=str(pydicom.dcmread(output).file_meta
                                                                            .TransferSyntaxUID))


def write_compressed(f):
    if shutil.which("gdcmconv") is None:
        print("make_dicom_fixtures: gdcmconv not found (libgdcm-tools): no compressed files", file=sys.stderr)
        return
    gdcmconv(f, "jpeg_baseline", "sc8", ["--jpeg", "--lossy", "-q", "95"], None, 40, 2.0)
    # 12 bits without the overlay bits of mr12_unsigned (a 12-bit JPEG holds only the stored bits), away from 0 and
    # 4095 where the lossy codec's ringing would be clipped.
    twelve = base_dataset(f.p, MR_STORAGE, ExplicitVRLittleEndian, 16, 12, False)
    set_pixels(twelve, 14 * f.p + 200)
    twelve.WindowCenter, twelve.WindowWidth = [ds_text(v) for v in window_of(14, 200)]
    f.accepted("mr12_plain", twelve)
    gdcmconv(f, "jpeg_extended", "mr12_plain", ["--jpeg", "--lossy", "-q", "95"], None, 40, 2.0)
    gdcmconv(f, "jpeg_lossless_sv1", "mr16_window", ["--jpeg"], None)
    gdcmconv(f, "jpeg_lossless", "mr16_signed_rescale", ["--jpeg"], "1.2.840.10008.1.2.4.57")
    gdcmconv(f, "jpegls_lossless", "mr16_window", ["--jpegls"], None)
    gdcmconv(f, "jpegls_near_lossless", "mr16_window", ["--jpegls", "--lossy", "-e", "2"], None, 1)
    gdcmconv(f, "j2k_lossless", "mr12_signed", ["--j2k"], None)
    gdcmconv(f, "j2k_lossy", "mr16_window", ["--j2k", "--lossy", "-q", "60"], None, 40, 4.0)  # sharp edges
    gdcmconv(f, "rle", "mr16_signed_rescale", ["--rle"], None)
    gdcmconv(f, "rle_8bit", "sc8", ["--rle"], None)
    # A compressed frame whose header declares another size than the data set: refused before decoding.
    ds = pydicom.dcmread(f.path("jpegls_lossless"))
    ds.Rows = ds.Rows // 2
    f.refused("codestream_size_mismatch", f.bytes_of(ds), "the compressed image declares")


def write_refused_kinds(f):
    p = f.p
    mpeg = f.mr16()
    mpeg.file_meta.TransferSyntaxUID = MPEG2
    mpeg.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    mpeg["PixelData"].VR = "OB"
    mpeg["PixelData"].is_undefined_length = True
    f.refused("mpeg2", f.bytes_of(mpeg), MPEG2 + " (MPEG2 Main Profile / Main Level)", True)
    deflated = f.mr16()
    deflated.file_meta.TransferSyntaxUID = DEFLATED
    f.refused("deflated", f.bytes_of(deflated), DEFLATED + " (Deflated Explicit VR Little Endian)", True)
    rgb = base_dataset(p, SECONDARY_CAPTURE, ExplicitVRLittleEndian, 8, 8, False)
    rgb.SamplesPerPixel, rgb.PhotometricInterpretation, rgb.PlanarConfiguration = 3, "RGB", 0
    rgb.PixelData = np.repeat(p[:, :, None], 3, axis=2).astype(np.uint8).tobytes()
    f.refused("rgb", f.bytes_of(rgb), "3 samples per pixel", True)
    frames = f.mr16()
    frames.NumberOfFrames = 3
    set_pixels(frames, np.stack([16 * p + 100] * 3))
    f.refused("multi_frame", f.bytes_of(frames), "3 frames")


def write_malformed(f):
    whole = f.bytes_of(f.mr16())
    f.refused("truncated", whole[:len(whole) - 1000], "declares")
    short = f.mr16()
    short.PixelData = short.PixelData[:len(short.PixelData) // 2]
    f.refused("short_pixel_data", f.bytes_of(short), "pixel data holds")
    huge = f.mr16()
    huge.Rows = huge.Columns = 60000
    f.refused("absurd_dimensions", f.bytes_of(huge), "60000x60000")
    # A private OB element whose length field is patched to 1 GB: GDCM would allocate it before reading.
    big = f.mr16()
    big.add_new(0x00090010, "LO", "MRISCAN TEST")
    big.add_new(0x00091010, "OB", b"\x01" * 16)
    data = bytearray(f.bytes_of(big))
    at = data.find(b"\x09\x00\x10\x10OB\x00\x00")
    data[at + 8:at + 12] = struct.pack("<I", 1 << 30)
    f.refused("gigabyte_element", bytes(data), "declares 1073741824 bytes")
    # Sequences nested 40 deep, each item holding the next.
    nested = f.mr16()
    inner = Dataset()
    for _ in range(40):
        outer = Dataset()
        outer.ReferencedSeriesSequence = Sequence([inner])
        inner = outer
    nested.ReferencedSeriesSequence = Sequence([inner])
    f.refused("deep_sequence", f.bytes_of(nested), "nested deeper than")
    no_pixels = f.mr16()
    del no_pixels.PixelData
    f.refused("no_pixel_data", f.bytes_of(no_pixels), "no Pixel Data")
    # Uncompressed pixels wrapped in fragments: no decoder knows where they are (the header must not be read as them).
    fragmented = f.mr16()
    fragmented.PixelData = encapsulate([bytes(fragmented.PixelData)])
    fragmented["PixelData"].VR = "OB"
    data = bytearray(f.bytes_of(fragmented))  # pydicom writes a defined length: patched to undefined, delimited
    at = data.rfind(b"\xe0\x7f\x10\x00OB\x00\x00")
    data[at + 8:at + 12] = b"\xff\xff\xff\xff"
    data += b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    f.refused("fragments_uncompressed", bytes(data), "only a compressed transfer syntax has")


# Identifying attributes of PS3.15's Basic Application Level Confidentiality Profile, each with a marker string.
IDENTIFYING = {
    "PatientName": "Zzmarkname^Qqpatient", "PatientID": "ZZMARKID4417", "PatientBirthDate": "19230417",
    "OtherPatientIDs": "ZZMARKOTHERID", "PatientAddress": "ZZMARK 12 Harbour Lane", "InstitutionName":
    "ZZMARK General Hospital", "InstitutionAddress": "ZZMARK 1 Hospital Road", "ReferringPhysicianName":
    "Zzmarkdoctor^Ww", "PerformingPhysicianName": "Zzmarkperformer^Ee", "OperatorsName": "Zzmarkoperator^Rr",
    "StationName": "ZZMARKSTATION", "StudyDescription": "ZZMARK study description", "SeriesDescription":
    "ZZMARK series description", "ImageComments": "ZZMARK free-text comment about the patient",
    "AccessionNumber": "ZZMARKACC77", "StudyID": "ZZMARKSTUDY", "DeviceSerialNumber": "ZZMARKSERIAL",
    "AdditionalPatientHistory": "ZZMARK history text", "StudyInstanceUID": "1.2.826.0.1.3680043.10.543.4417.1",
    "SeriesInstanceUID": "1.2.826.0.1.3680043.10.543.4417.2",
}


def write_identified(f):
    ds = f.mr16()
    for keyword, value in IDENTIFYING.items():
        setattr(ds, keyword, value)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.543.4417.3"
    ds.add_new(0x00110010, "LO", "ZZMARK PRIVATE CREATOR")
    ds.add_new(0x00111001, "LT", "ZZMARK private free text")
    markers = ["Zzmarkname", "ZZMARKID4417", "19230417", "ZZMARKOTHERID", "Harbour", "ZZMARK", "Zzmark",
               "Hospital", "3680043.10.543.4417", "PRIVATE CREATOR", "free-text comment"]
    f.accepted("identified", ds, markers=markers)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    f = Fixtures(read_pgm(sys.argv[1]), sys.argv[2])
    write_uncompressed(f)
    write_compressed(f)
    write_refused_kinds(f)
    write_malformed(f)
    write_identified(f)
    with open(os.path.join(sys.argv[2], "manifest.json"), "w") as out:
        json.dump(f.manifest, out, indent=1)
    print("make_dicom_fixtures: %d files in %s" % (len(f.manifest), sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
