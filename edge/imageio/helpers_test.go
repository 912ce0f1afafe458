package imageio

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"
)

// Colours of the quadrants of the asymmetric test picture: saturated and
// far apart so that JPEG loss cannot blur one into another.
var (
	quadTL = color.RGBA{220, 30, 30, 255}   // red
	quadTR = color.RGBA{30, 200, 30, 255}   // green
	quadBL = color.RGBA{30, 30, 220, 255}   // blue
	quadBR = color.RGBA{240, 240, 240, 255} // white
)

// quadrants returns a w x h picture with a different colour in each
// quadrant, so that every rotation and flip of it is distinguishable.
func quadrants(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := quadTL
			switch {
			case x >= w/2 && y < h/2:
				c = quadTR
			case x < w/2 && y >= h/2:
				c = quadBL
			case x >= w/2 && y >= h/2:
				c = quadBR
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

// photo returns a smooth gradient with noise, which compresses and decodes
// roughly like a real photograph.
func photo(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 1))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			n := func() float64 { return rng.NormFloat64() * 6 }
			r := 40 + 180*fx + 20*math.Sin(fy*9) + n()
			g := 60 + 150*fy + 25*math.Cos(fx*7) + n()
			b := 200 - 120*fx*fy + n()
			m.SetRGBA(x, y, color.RGBA{clampByte(r), clampByte(g), clampByte(b), 255})
		}
	}
	return m
}

func clampByte(v float64) uint8 {
	return uint8(math.Max(0, math.Min(255, math.Round(v))))
}

func encodeJPEG(t testing.TB, m image.Image, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withSegment inserts a raw marker segment right after a JPEG's SOI.
func withSegment(jpg []byte, marker byte, payload []byte) []byte {
	seg := []byte{0xff, marker, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// byteOrder is what the EXIF builders need from binary.LittleEndian and
// binary.BigEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// exifPayload builds an APP1 Exif payload whose IFD0 holds a Make string
// (so that orientation is not the first entry) and the given orientation.
func exifPayload(bo byteOrder, orientation uint16) []byte {
	var t []byte
	if bo == binary.LittleEndian {
		t = append(t, "II*\x00"...)
	} else {
		t = append(t, "MM\x00*"...)
	}
	t = bo.AppendUint32(t, 8)
	t = bo.AppendUint16(t, 2)
	// Make, ASCII, 8 bytes at offset 8+2+2*12+4 = 38.
	t = bo.AppendUint16(t, 0x010f)
	t = bo.AppendUint16(t, 2)
	t = bo.AppendUint32(t, 8)
	t = bo.AppendUint32(t, 38)
	// Orientation, SHORT, count 1, value left-justified in the field.
	t = bo.AppendUint16(t, 0x0112)
	t = bo.AppendUint16(t, 3)
	t = bo.AppendUint32(t, 1)
	t = bo.AppendUint16(t, orientation)
	t = bo.AppendUint16(t, 0)
	t = bo.AppendUint32(t, 0) // No IFD1.
	t = append(t, "TestCo\x00\x00"...)
	return append([]byte("Exif\x00\x00"), t...)
}

// pngChunk appends a PNG chunk with a correct CRC.
func pngChunk(b []byte, typ string, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	start := len(b)
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// hugePNG is a valid, tiny PNG whose IHDR declares w x h RGB pixels and
// whose IDAT holds one compressed row of zeros.
func hugePNG(t testing.TB, w, h uint32) []byte {
	t.Helper()
	b := []byte("\x89PNG\r\n\x1a\n")
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB, deflate, no interlace.
	b = pngChunk(b, "IHDR", ihdr)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	if _, err := zw.Write(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b = pngChunk(b, "IDAT", z.Bytes())
	return pngChunk(b, "IEND", nil)
}

// hugeJPEG returns a real JPEG whose SOF0 has been rewritten to declare
// w x h.
func hugeJPEG(t testing.TB, w, h uint16) []byte {
	t.Helper()
	b := encodeJPEG(t, quadrants(16, 16), 90)
	i := bytes.Index(b, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0 in encoded JPEG")
	}
	binary.BigEndian.PutUint16(b[i+5:], h)
	binary.BigEndian.PutUint16(b[i+7:], w)
	return b
}

// bitWriter writes the LSB-first bit stream VP8L uses.
type bitWriter struct {
	b    []byte
	acc  uint64
	nacc uint
}

func (w *bitWriter) put(v uint64, n uint) {
	w.acc |= v << w.nacc
	w.nacc += n
	for w.nacc >= 8 {
		w.b = append(w.b, byte(w.acc))
		w.acc >>= 8
		w.nacc -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	if w.nacc > 0 {
		w.b = append(w.b, byte(w.acc))
		w.acc, w.nacc = 0, 0
	}
	return w.b
}

// losslessWebP encodes m as a lossless (VP8L) WebP in which every channel
// value is 0 or 255 and alpha is opaque. That restriction lets each channel
// use a two-symbol "simple" prefix code, one bit per channel per pixel, so
// the encoder fits in a test helper.
func losslessWebP(t testing.TB, m image.Image) []byte {
	t.Helper()
	b := m.Bounds()
	var w bitWriter
	w.put(0x2f, 8)
	w.put(uint64(b.Dx()-1), 14)
	w.put(uint64(b.Dy()-1), 14)
	w.put(0, 1)            // alpha hint
	w.put(0, 3)            // version
	w.put(0, 1)            // no transform
	w.put(0, 1)            // no colour cache
	w.put(0, 1)            // no meta prefix codes
	twoSymbols := func() { // simple code, 2 symbols, 8-bit: 0 and 255
		w.put(1, 1)
		w.put(1, 1)
		w.put(1, 1)
		w.put(0, 8)
		w.put(255, 8)
	}
	twoSymbols() // green
	twoSymbols() // red
	twoSymbols() // blue
	w.put(1, 1)  // alpha: simple code, 1 symbol, 8-bit: 255
	w.put(0, 1)
	w.put(1, 1)
	w.put(255, 8)
	w.put(1, 1) // distance: simple code, 1 symbol, 1-bit: 0
	w.put(0, 1)
	w.put(0, 1)
	w.put(0, 1)
	bit := func(v uint32) uint64 {
		if v >= 0x8000 {
			return 1
		}
		return 0
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := m.At(x, y).RGBA()
			w.put(bit(g), 1)
			w.put(bit(r), 1)
			w.put(bit(bl), 1)
		}
	}
	data := w.bytes()
	out := []byte("RIFF\x00\x00\x00\x00WEBPVP8L")
	out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
	out = append(out, data...)
	if len(data)%2 == 1 {
		out = append(out, 0)
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

// opaque hides an image's concrete type so that Resize takes its generic,
// At-based path.
type opaque struct{ image.Image }

// refResize is an independent float64 implementation of the documented
// Resize semantics, built on At only.
func refResize(src image.Image, l Layout) []byte {
	sb := src.Bounds()
	sw, sh := sb.Dx(), sb.Dy()
	px := func(x, y int) [3]float64 {
		c := src.At(sb.Min.X+x, sb.Min.Y+y)
		if c == nil {
			return [3]float64{255, 255, 255}
		}
		r, g, b, a := c.RGBA()
		over := func(c uint32) float64 { return float64(min(c+0xffff-a, 0xffff) >> 8) }
		return [3]float64{over(r), over(g), over(b)}
	}
	out := make([]byte, 0, l.Len())
	for dy := 0; dy < l.Height; dy++ {
		fy := float64(dy) * float64(sh) / float64(l.Height)
		y0 := int(math.Floor(fy))
		y1 := min(y0+1, sh-1)
		wy := fy - float64(y0)
		for dx := 0; dx < l.Width; dx++ {
			fx := float64(dx) * float64(sw) / float64(l.Width)
			x0 := int(math.Floor(fx))
			x1 := min(x0+1, sw-1)
			wx := fx - float64(x0)
			p00, p01, p10, p11 := px(x0, y0), px(x1, y0), px(x0, y1), px(x1, y1)
			var c [3]float64
			for i := range c {
				top := p00[i]*(1-wx) + p01[i]*wx
				bot := p10[i]*(1-wx) + p11[i]*wx
				c[i] = top*(1-wy) + bot*wy
			}
			if l.Channels == 1 {
				r, g, b := math.Round(c[0]), math.Round(c[1]), math.Round(c[2])
				out = append(out, clampByte(0.299*r+0.587*g+0.114*b))
				continue
			}
			out = append(out, clampByte(c[0]), clampByte(c[1]), clampByte(c[2]))
		}
	}
	return out
}

// maxDiff returns the largest per-byte difference between a and b and the
// index where it occurs.
func maxDiff(a, b []byte) (int, int) {
	d, at := 0, -1
	for i := range a {
		v := int(a[i]) - int(b[i])
		if v < 0 {
			v = -v
		}
		if v > d {
			d, at = v, i
		}
	}
	return d, at
}

func mustResize(t testing.TB, src image.Image, l Layout) []byte {
	t.Helper()
	dst := make([]byte, l.Len())
	if err := Resize(dst, src, l); err != nil {
		t.Fatalf("Resize(%T, %+v): %v", src, l, err)
	}
	return dst
}
