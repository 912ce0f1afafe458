package imageio

import (
	"encoding/binary"
	"image"
	"testing"
)

func benchmarkDecode(b *testing.B, w, h int) {
	data := encodeJPEG(b, photo(w, h, 42), 90)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := Decode(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkResize(b *testing.B, w, h int) {
	// image/jpeg's decoder: with cgo, Decode gives libjpeg-turbo's RGBA.
	img, _, err := decode(encodeJPEG(b, photo(w, h, 42), 90), Limits{}, Layout{}, decodeStdJPEG)
	if err != nil {
		b.Fatal(err)
	}
	if m, ok := img.(*image.YCbCr); !ok || m.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		b.Fatalf("decoded %T, want 4:2:0 *image.YCbCr", img)
	}
	benchmarkResizeImage(b, img)
}

func benchmarkResizeImage(b *testing.B, img image.Image) {
	l := Layout{224, 224, 3}
	dst := make([]byte, l.Len())
	var r Resizer
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Resize(dst, img, l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode640x480JPEG(b *testing.B)    { benchmarkDecode(b, 640, 480) }
func BenchmarkDecode1920x1080JPEG(b *testing.B)  { benchmarkDecode(b, 1920, 1080) }
func BenchmarkResize640x480To224(b *testing.B)   { benchmarkResize(b, 640, 480) }
func BenchmarkResize1920x1080To224(b *testing.B) { benchmarkResize(b, 1920, 1080) }

// BenchmarkDecodeRotated640x480JPEG measures the cost of EXIF orientation 6,
// which most phone photos carry.
func BenchmarkDecodeRotated640x480JPEG(b *testing.B) {
	data := withSegment(encodeJPEG(b, photo(480, 640, 42), 90), 0xe1, exifPayload(binary.LittleEndian, 6))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchmarkDecodeFor measures what a classification pays before the model:
// decode for a 224x224x3 input, then Resizer.Resize into it. "go" is
// image/jpeg at full size, "turbo" libjpeg-turbo scaled in the DCT domain
// (skipped without cgo).
func benchmarkDecodeFor(b *testing.B, w, h int) {
	data := encodeJPEG(b, photo(w, h, 42), 90)
	l := Layout{224, 224, 3}
	for _, bc := range []struct {
		name string
		dec  jpegDecoder
	}{{"go", decodeStdJPEG}, {"turbo", decodeJPEG}} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.name == "turbo" && !jpegScales {
				b.Skip("built without cgo: no libjpeg-turbo")
			}
			dst := make([]byte, l.Len())
			var r Resizer
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				img, _, err := decode(data, Limits{}, l, bc.dec)
				if err != nil {
					b.Fatal(err)
				}
				if err := r.Resize(dst, img, l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeFor640x480To224(b *testing.B)   { benchmarkDecodeFor(b, 640, 480) }
func BenchmarkDecodeFor1920x1080To224(b *testing.B) { benchmarkDecodeFor(b, 1920, 1080) }

// benchmarkPreprocess measures Preprocessor.Preprocess: what a daemon
// worker pays per frame before the model.
func benchmarkPreprocess(b *testing.B, w, h int) {
	data := encodeJPEG(b, photo(w, h, 42), 90)
	l := Layout{224, 224, 3}
	p := Preprocessor{Layout: l}
	defer p.Close()
	dst := make([]byte, l.Len())
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := p.Preprocess(dst, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPreprocess640x480To224(b *testing.B)   { benchmarkPreprocess(b, 640, 480) }
func BenchmarkPreprocess1920x1080To224(b *testing.B) { benchmarkPreprocess(b, 1920, 1080) }

// BenchmarkResizeRGBA320x240To224 is the resize a 640x480 JPEG needs
// after libjpeg-turbo decoded it at half scale.
func BenchmarkResizeRGBA320x240To224(b *testing.B) { benchmarkResizeImage(b, photo(320, 240, 42)) }
