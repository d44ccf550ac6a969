"""Turn one uploaded image into its presets' pictures: JPEG, and any of PNG, WebP, AVIF asked for,
with a placeholder (BlurHash and dominant colour) for pages to show while they load.

Pure: bytes in, bytes out, no storage, queue or web code, so it is tested
without services. The work is a short pipeline over one decoded picture:

    load -> orient -> convert to sRGB RGB -> resize (or crop) -> encode

Each step is a module of its own (loading, orientation, colour, resizing,
cropping, encoding, placeholder) of plain functions; plan says which picture is made from which
source, in what order and on which thread, and derive runs a plan and holds all the concurrency.
Importing the package changes nothing in the process: a worker calls prepare_process at start.
Every input problem is reported as ImageRejected with a stable code; anything else escaping is a
bug here.

Choices the derivatives contract leaves open:

* Derivatives embed no ICC profile. Pixels are converted to sRGB (when the
  upload carries a profile that isn't sRGB) and an untagged JPEG is read as
  sRGB by browsers and viewers, so a profile would only add bytes.
* The built-in resized and thumbnail are written at quality 85: visually clean at
  the sizes they are viewed at, a third of the bytes of quality 95. compressed
  uses quality 60 with libjpeg's standard (IJG) tables, as the contract says.
  Every preset's quality per format comes from imgpipe.presets.
* JPEGs are baseline, not optimized (Huffman optimisation saves a few
  percent and costs a second pass over the data), with 4:2:0 chroma.
* PNG, WebP and AVIF keep transparency (JPEG has none, so it is flattened
  on white there). WebP and AVIF qualities match the JPEG ones in PSNR on
  photographs, in fewer bytes (see imgpipe.presets); PNG is lossless,
  so its compressed is the full-size picture, losslessly.
* A large JPEG is decoded twice at once: in full for the full-size presets, and
  with DCT scaling (Image.draft) on a second thread for those with a box
  (see plan). The two decodes cost about what one full
  decode and a resize of it would, in less wall time.
"""

from processor.imaging.colour import to_srgb_rgb
from processor.imaging.derive import Derivatives, make_derivatives, resize_in_bands, resize_to
from processor.imaging.errors import ImageRejected
from processor.imaging.loading import check_pixel_limit, load, open_accepted, readable_accepted_formats
from processor.imaging.orientation import exif_orientation, orient
from processor.imaging.process_setup import prepare_process
from processor.imaging.resizing import RESIZE_FILTER, RESIZE_REDUCING_GAP, fit_size

__all__ = [
    "RESIZE_FILTER", "RESIZE_REDUCING_GAP", "Derivatives", "ImageRejected", "check_pixel_limit",
    "exif_orientation", "fit_size", "load", "make_derivatives", "open_accepted", "orient",
    "prepare_process", "readable_accepted_formats", "resize_in_bands", "resize_to", "to_srgb_rgb",
]
