// Package imageio decodes untrusted image bytes with limits and resizes them
// into a model's input layout.
//
// Decode accepts JPEG, PNG, GIF (first frame), BMP and WebP. It reads the
// image header before anything else and refuses images whose declared size
// exceeds the configured pixel budget, so a few hundred hostile bytes cannot
// make the process allocate gigabytes. JPEG EXIF orientation is applied, so
// callers always receive an upright image. DecodeFor takes the model input
// size as well: built with cgo, JPEGs are then decoded by libjpeg-turbo
// scaled down in the DCT domain to no less than that size, which makes a
// large camera frame several times cheaper; without cgo, or for whatever
// libjpeg-turbo refuses, image/jpeg decodes them at full size.
//
// Resize and Resizer convert any image.Image into the packed, row-major
// HWC uint8 layout that TensorFlow Lite image models consume, using the same
// bilinear sampling convention as TensorFlow's tf.image.resize.
//
// Preprocessor does both for one worker, keeping its memory between
// frames: an upright JPEG is decoded and resized by libjpeg-turbo and the
// same integer arithmetic in one C call, with no allocation per frame.
package imageio
