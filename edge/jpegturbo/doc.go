// Package jpegturbo decodes JPEG images with libjpeg-turbo's TurboJPEG C
// API, scaled in the DCT domain: a 1080p camera frame headed for a 224x224
// model input is decoded straight to 480x270, at a fraction of the cost of
// decoding it whole. DecodeResized goes on to resize that into the model's
// input in the same C call, into memory the Decoder keeps.
//
// It is a small cgo leaf. It uses only the TurboJPEG 2.x functions
// (tjDecompressHeader3, tjDecompress2, tjGetErrorStr2, tjGetErrorCode),
// which libjpeg-turbo 3.x still provides, so it builds against Debian
// bookworm's libturbojpeg0-dev (2.1) on a board as well as against sid's
// (3.1) in the private sysroot.
//
// Strictness: libjpeg-turbo repairs some damage and reports it only as a
// warning - a truncated file is padded with grey, for instance. Decoding
// here stops at the first warning and returns an error, so damaged input
// never comes back as a partly grey picture.
//
// Without cgo the package is empty; edge/imageio then decodes JPEG with
// image/jpeg.
package jpegturbo
