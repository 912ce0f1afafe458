package imageio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"testing"
)

// storedAs returns how a camera would store the upright picture u when it
// records EXIF orientation o, written out from the EXIF definitions of
// where row 0 and column 0 of the stored image appear visually. It shares
// no code with the package's remap.
func storedAs(u image.Image, o int) *image.RGBA {
	b := u.Bounds()
	W, H := b.Dx(), b.Dy()
	sw, sh := W, H
	if o >= 5 {
		sw, sh = H, W
	}
	s := image.NewRGBA(image.Rect(0, 0, sw, sh))
	for a := 0; a < sw; a++ {
		for c := 0; c < sh; c++ {
			var x, y int
			switch o {
			case 1:
				x, y = a, c
			case 2: // Row 0 is the top, column 0 the right-hand side.
				x, y = W-1-a, c
			case 3: // Row 0 is the bottom, column 0 the right-hand side.
				x, y = W-1-a, H-1-c
			case 4: // Row 0 is the bottom, column 0 the left-hand side.
				x, y = a, H-1-c
			case 5: // Row 0 is the left-hand side, column 0 the top.
				x, y = c, a
			case 6: // Row 0 is the right-hand side, column 0 the top.
				x, y = W-1-c, a
			case 7: // Row 0 is the right-hand side, column 0 the bottom.
				x, y = W-1-c, H-1-a
			case 8: // Row 0 is the left-hand side, column 0 the bottom.
				x, y = c, H-1-a
			}
			s.Set(a, c, u.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return s
}

func TestDecodeEXIFOrientation(t *testing.T) {
	// Sizes cover the exact YCbCr plane transform (multiples of the 4:2:0
	// chroma block) and the 4:4:4 fallback (odd sizes).
	for _, size := range []image.Point{{48, 32}, {33, 17}} {
		for _, bo := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
			for o := 1; o <= 8; o++ {
				name := fmt.Sprintf("%dx%d/%v/%d", size.X, size.Y, bo, o)
				t.Run(name, func(t *testing.T) {
					upright := quadrants(size.X, size.Y)
					jpg := encodeJPEG(t, storedAs(upright, o), 95)
					jpg = withSegment(jpg, 0xe0, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"))
					jpg = withSegment(jpg, 0xe1, exifPayload(bo, uint16(o)))
					if got := jpegOrientation(jpg); got != o {
						t.Fatalf("jpegOrientation = %d, want %d", got, o)
					}
					img, _, err := Decode(jpg, Limits{})
					if err != nil {
						t.Fatal(err)
					}
					if got := img.Bounds().Size(); got != size {
						t.Fatalf("decoded size %v, want upright %v", got, size)
					}
					checkQuadrants(t, img)
				})
			}
		}
	}
}

// Rotating the decoded planes must give exactly what rotating the pixels
// would, for every type orient handles and every subsampling ratio.
func TestOrientMatchesPixelRotation(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var srcs []image.Image
	for _, r := range allRatios {
		for _, size := range []image.Point{{16, 8}, {13, 7}} {
			srcs = append(srcs, randomYCbCr(rng, image.Rect(0, 0, size.X, size.Y), r))
		}
	}
	srcs = append(srcs,
		randomYCbCr(rng, image.Rect(3, 5, 19, 13), image.YCbCrSubsampleRatio420),
		randomGray(rng, image.Rect(0, 0, 9, 5)),
		randomCMYK(rng, image.Rect(0, 0, 9, 5)),
		randomRGBA(rng, image.Rect(0, 0, 9, 5), false),
		randomNRGBA(rng, image.Rect(0, 0, 9, 5)),
		randomPaletted(rng, image.Rect(0, 0, 9, 5)), // generic fallback
	)
	for _, src := range srcs {
		for o := 1; o <= 8; o++ {
			got := orient(src, o)
			// storedAs(u, o) maps upright to stored; orient must invert it,
			// so storing the result again must give back src.
			back := storedAs(got, o)
			for y := 0; y < back.Rect.Dy(); y++ {
				for x := 0; x < back.Rect.Dx(); x++ {
					b := src.Bounds()
					want := rgbaOf(src.At(b.Min.X+x, b.Min.Y+y))
					if g := rgbaOf(back.At(x, y)); g != want {
						t.Fatalf("%T %v orientation %d: pixel (%d,%d) = %v, want %v",
							src, src.Bounds(), o, x, y, g, want)
					}
				}
			}
		}
	}
}

func TestJPEGOrientationMalformed(t *testing.T) {
	jpg := encodeJPEG(t, quadrants(16, 8), 90)
	le := binary.LittleEndian
	valid := exifPayload(le, 6)

	// mutate returns a copy of the valid payload with TIFF bytes at off
	// replaced; offsets are relative to the TIFF header.
	mutateP := func(p []byte, off int, b ...byte) []byte {
		p = append([]byte{}, p...)
		copy(p[6+off:], b)
		return p
	}
	mutate := func(off int, b ...byte) []byte { return mutateP(valid, off, b...) }
	u32 := func(v uint32) []byte { return le.AppendUint32(nil, v) }
	u16 := func(v uint16) []byte { return le.AppendUint16(nil, v) }

	tests := []struct {
		name    string
		payload []byte
	}{
		{"IFD offset past end", mutate(4, u32(1<<20)...)},
		{"IFD offset max uint32", mutate(4, u32(0xffffffff)...)},
		{"IFD offset at last byte", mutate(4, u32(uint32(len(valid)-7))...)},
		{"huge entry count", mutate(8, u16(0xffff)...)},
		{"IFD points at header", mutate(4, u32(0)...)},
		{"IFD0 without orientation, next IFD loops", mutateP(mutate(8+2+12, 0x99, 0x99), 8+2+2*12, u32(8)...)},
		{"IFD0 without orientation, next IFD past end", mutateP(mutate(8+2+12, 0x99, 0x99), 8+2+2*12, u32(1<<30)...)},
		{"orientation zero", mutate(8+2+12+8, u16(0)...)},
		{"orientation nine", mutate(8+2+12+8, u16(9)...)},
		{"orientation wrong type", mutate(8+2+12+2, u16(7)...)},
		{"orientation zero count", mutate(8+2+12+4, u32(0)...)},
		{"bad byte order", mutate(0, 'X', 'X')},
		{"truncated TIFF", valid[:6+5]},
		{"no TIFF", []byte("Exif\x00\x00")},
		{"not Exif", append([]byte("XMP\x00\x00\x00"), valid[6:]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := withSegment(jpg, 0xe1, tc.payload)
			if got := jpegOrientation(data); got != 1 {
				t.Errorf("jpegOrientation = %d, want 1", got)
			}
			img, _, err := Decode(data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			checkQuadrants(t, img)
		})
	}

	// Only IFD0 is read and no IFD pointer is followed, so a self-loop
	// after a valid IFD0 costs nothing and its orientation still counts.
	loop := withSegment(jpg, 0xe1, mutate(8+2+2*12, u32(8)...))
	if got := jpegOrientation(loop); got != 6 {
		t.Errorf("IFD0 with looping next pointer: jpegOrientation = %d, want 6", got)
	}

	// Broken segment structure around the Exif data.
	raw := [][]byte{
		{0xff, 0xd8},
		{0xff, 0xd8, 0xff, 0xe1},
		{0xff, 0xd8, 0xff, 0xe1, 0x00},
		{0xff, 0xd8, 0xff, 0xe1, 0x00, 0x00},       // length below 2
		{0xff, 0xd8, 0xff, 0xe1, 0x00, 0x01},       // length below 2
		{0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff, 'E'},  // length past end
		{0xff, 0xd8, 0xff, 0xff, 0xff, 0xff, 0xff}, // only fill bytes
		{0xff, 0xd8, 0x00, 0x00, 0xff, 0xe1},       // lost sync
		append([]byte{0xff, 0xd8, 0xff, 0xe1, 0x00, 0x10}, "Exif\x00\x00MM\x00*\xff\xff\xff\xff"...),
		append([]byte{0xff, 0xd8, 0xff, 0xe1, 0x00, 0x08}, "Exif\x00\x00"...),
	}
	for i, b := range raw {
		if got := jpegOrientation(b); got != 1 {
			t.Errorf("raw case %d: jpegOrientation = %d, want 1", i, got)
		}
	}

	// An Exif segment after the first scan is not metadata.
	late := append([]byte{}, jpg[:len(jpg)-2]...) // Drop EOI.
	late = append(late, 0xff, 0xe1, byte((len(valid)+2)>>8), byte(len(valid)+2))
	late = append(late, valid...)
	if got := jpegOrientation(late); got != 1 {
		t.Errorf("Exif after SOS: jpegOrientation = %d, want 1", got)
	}
}

func TestJPEGOrientationLongType(t *testing.T) {
	// Some tools write orientation as a LONG; accept it.
	p := exifPayload(binary.BigEndian, 3)
	binary.BigEndian.PutUint16(p[6+8+2+12+2:], 4)
	binary.BigEndian.PutUint32(p[6+8+2+12+8:], 3)
	if got := jpegOrientation(withSegment([]byte{0xff, 0xd8, 0xff, 0xd9}, 0xe1, p)); got != 3 {
		t.Errorf("jpegOrientation = %d, want 3", got)
	}
}

func FuzzJPEGOrientation(f *testing.F) {
	f.Add(exifPayload(binary.LittleEndian, 6))
	f.Add(exifPayload(binary.BigEndian, 8))
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > 0xfff0 {
			return
		}
		data := withSegment([]byte{0xff, 0xd8, 0xff, 0xd9}, 0xe1, payload)
		if o := jpegOrientation(data); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
		if o := tiffOrientation(payload); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

// TestJPEGHeadersFrameSize: the frame size the segment walk reports (the
// fast path's pixel limit and scale come from it) is image/jpeg's.
func TestJPEGHeadersFrameSize(t *testing.T) {
	for _, data := range [][]byte{
		encodeJPEG(t, photo(640, 480, 1), 90),
		encodeJPEG(t, photo(100, 80, 2), 90),
		withSegment(encodeJPEG(t, photo(480, 640, 3), 90), 0xe1, exifPayload(binary.BigEndian, 6)),
		readTestdata(t, "progressive.jpg"),
	} {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		info := jpegHeaders(data)
		if !info.frameOK || info.width != cfg.Width || info.height != cfg.Height {
			t.Errorf("jpegHeaders = %+v, image/jpeg says %dx%d", info, cfg.Width, cfg.Height)
		}
	}
	if info := jpegHeaders(readTestdata(t, "arithmetic.jpg")); info.frameOK {
		t.Errorf("arithmetic coding: frameOK (image/jpeg refuses it): %+v", info)
	}
}
