package imageio

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"testing"
)

var allRatios = []image.YCbCrSubsampleRatio{
	image.YCbCrSubsampleRatio444,
	image.YCbCrSubsampleRatio422,
	image.YCbCrSubsampleRatio420,
	image.YCbCrSubsampleRatio440,
	image.YCbCrSubsampleRatio411,
	image.YCbCrSubsampleRatio410,
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

func randomYCbCr(rng *rand.Rand, r image.Rectangle, ratio image.YCbCrSubsampleRatio) *image.YCbCr {
	m := image.NewYCbCr(r, ratio)
	fillRandom(rng, m.Y)
	fillRandom(rng, m.Cb)
	fillRandom(rng, m.Cr)
	return m
}

func randomNYCbCrA(rng *rand.Rand, r image.Rectangle, ratio image.YCbCrSubsampleRatio) *image.NYCbCrA {
	m := image.NewNYCbCrA(r, ratio)
	fillRandom(rng, m.Y)
	fillRandom(rng, m.Cb)
	fillRandom(rng, m.Cr)
	fillRandom(rng, m.A)
	for i := range m.A { // Make the common opaque case common.
		if i%3 == 0 {
			m.A[i] = 0xff
		}
	}
	return m
}

func randomGray(rng *rand.Rand, r image.Rectangle) *image.Gray {
	m := image.NewGray(r)
	fillRandom(rng, m.Pix)
	return m
}

func randomGray16(rng *rand.Rand, r image.Rectangle) *image.Gray16 {
	m := image.NewGray16(r)
	fillRandom(rng, m.Pix)
	return m
}

func randomCMYK(rng *rand.Rand, r image.Rectangle) *image.CMYK {
	m := image.NewCMYK(r)
	fillRandom(rng, m.Pix)
	return m
}

// randomRGBA returns valid premultiplied pixels unless invalid is set, in
// which case colour may exceed alpha (which both paths must saturate).
func randomRGBA(rng *rand.Rand, r image.Rectangle, invalid bool) *image.RGBA {
	m := image.NewRGBA(r)
	fillRandom(rng, m.Pix)
	for i := 0; i < len(m.Pix); i += 4 {
		switch rng.IntN(3) {
		case 0:
			m.Pix[i+3] = 0xff
		case 1:
			m.Pix[i+3] = 0
		}
		if !invalid {
			a := m.Pix[i+3]
			m.Pix[i] = min(m.Pix[i], a)
			m.Pix[i+1] = min(m.Pix[i+1], a)
			m.Pix[i+2] = min(m.Pix[i+2], a)
		}
	}
	return m
}

func randomNRGBA(rng *rand.Rand, r image.Rectangle) *image.NRGBA {
	m := image.NewNRGBA(r)
	fillRandom(rng, m.Pix)
	for i := 3; i < len(m.Pix); i += 4 {
		switch rng.IntN(3) {
		case 0:
			m.Pix[i] = 0xff
		case 1:
			m.Pix[i] = 0
		}
	}
	return m
}

func randomRGBA64(rng *rand.Rand, r image.Rectangle) *image.RGBA64 {
	m := image.NewRGBA64(r)
	fillRandom(rng, m.Pix)
	for i := 0; i < len(m.Pix); i += 8 {
		if rng.IntN(2) == 0 {
			m.Pix[i+6], m.Pix[i+7] = 0xff, 0xff
		}
		a := uint16(m.Pix[i+6])<<8 | uint16(m.Pix[i+7])
		for c := 0; c < 6; c += 2 { // Keep it validly premultiplied.
			v := min(uint16(m.Pix[i+c])<<8|uint16(m.Pix[i+c+1]), a)
			m.Pix[i+c], m.Pix[i+c+1] = byte(v>>8), byte(v)
		}
	}
	return m
}

func randomNRGBA64(rng *rand.Rand, r image.Rectangle) *image.NRGBA64 {
	m := image.NewNRGBA64(r)
	fillRandom(rng, m.Pix)
	for i := 0; i < len(m.Pix); i += 8 {
		if rng.IntN(2) == 0 {
			m.Pix[i+6], m.Pix[i+7] = 0xff, 0xff
		}
	}
	return m
}

func randomPaletted(rng *rand.Rand, r image.Rectangle) *image.Paletted {
	pal := color.Palette{nil} // A nil entry counts as transparent.
	for range 40 {
		switch rng.IntN(3) {
		case 0:
			pal = append(pal, color.NRGBA{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		case 1:
			pal = append(pal, color.Gray16{uint16(rng.Uint32())})
		default:
			pal = append(pal, color.RGBA{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), 255})
		}
	}
	m := image.NewPaletted(r, pal)
	for i := range m.Pix {
		m.Pix[i] = uint8(rng.IntN(len(pal)))
	}
	return m
}

// testSources returns one random image of every type with a fast path,
// several of them as sub-images with odd, even and negative origins.
func testSources(rng *rand.Rand) []image.Image {
	r := image.Rect(0, 0, 37, 23)
	odd := image.Rect(-7, 3, 40, 34)
	var srcs []image.Image
	for _, ratio := range allRatios {
		srcs = append(srcs,
			randomYCbCr(rng, r, ratio),
			randomYCbCr(rng, odd, ratio),
			randomYCbCr(rng, image.Rect(0, 0, 64, 48), ratio).SubImage(image.Rect(5, 3, 50, 41)),
			randomNYCbCrA(rng, odd, ratio),
		)
	}
	srcs = append(srcs,
		randomYCbCr(rng, image.Rect(0, 0, 1, 9), image.YCbCrSubsampleRatio420),
		randomYCbCr(rng, image.Rect(0, 0, 9, 1), image.YCbCrSubsampleRatio420),
		randomYCbCr(rng, image.Rect(3, 3, 5, 5), image.YCbCrSubsampleRatio410),
		randomRGBA(rng, r, false),
		randomRGBA(rng, odd, true),
		randomNRGBA(rng, r),
		randomNRGBA(rng, odd).SubImage(image.Rect(-3, 5, 20, 30)),
		randomGray(rng, r),
		randomGray(rng, odd),
		randomGray16(rng, odd),
		randomRGBA64(rng, odd),
		randomNRGBA64(rng, odd),
		randomCMYK(rng, odd),
		randomPaletted(rng, odd),
		image.NewUniform(color.NRGBA{10, 200, 30, 128}), // unbounded: must error
	)
	return srcs
}

var testLayouts = []Layout{
	{1, 1, 3},
	{16, 9, 3},
	{16, 9, 1},
	{37, 23, 3}, // identity for r
	{80, 61, 3}, // upscale
	{80, 61, 1},
	{5, 40, 3}, // mixed
}

// Each fast path must agree with the At-based generic path to within
// 2 per channel (in practice they are within 1), and with the independent
// float reference.
func TestResizeFastPathsMatchGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, src := range testSources(rng) {
		name := fmt.Sprintf("%T%v", src, src.Bounds())
		if m, ok := src.(*image.YCbCr); ok {
			name += m.SubsampleRatio.String()
		}
		t.Run(name, func(t *testing.T) {
			if src.Bounds().Dx() > 1<<20 {
				if err := Resize(make([]byte, 3), src, Layout{1, 1, 3}); err == nil {
					t.Fatal("Resize of an unbounded image succeeded")
				}
				return
			}
			var rz Resizer
			for _, l := range testLayouts {
				fast := mustResize(t, src, l)
				slow := mustResize(t, opaque{src}, l)
				if d, at := maxDiff(fast, slow); d > 2 {
					t.Errorf("layout %v: fast path differs from generic by %d at byte %d", l, d, at)
				}
				if d, at := maxDiff(fast, refResize(src, l)); d > 1 {
					t.Errorf("layout %v: differs from float reference by %d at byte %d", l, d, at)
				}
				reused := make([]byte, l.Len())
				if err := rz.Resize(reused, src, l); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(reused, fast) {
					t.Errorf("layout %v: Resizer.Resize differs from Resize", l)
				}
			}
		})
	}
}

func TestResizeKnownValues(t *testing.T) {
	// With half_pixel_centers=false, output pixel 0 samples source pixel 0
	// exactly, so 2x2 -> 1x1 is the top-left pixel, not the average.
	m := image.NewRGBA(image.Rect(0, 0, 2, 2))
	m.SetRGBA(0, 0, color.RGBA{10, 20, 30, 255})
	m.SetRGBA(1, 0, color.RGBA{200, 200, 200, 255})
	m.SetRGBA(0, 1, color.RGBA{100, 100, 100, 255})
	m.SetRGBA(1, 1, color.RGBA{0, 0, 0, 255})
	if got := mustResize(t, m, Layout{1, 1, 3}); !bytes.Equal(got, []byte{10, 20, 30}) {
		t.Errorf("2x2 -> 1x1 = %v, want the top-left pixel", got)
	}

	// 2x1 -> 4x1 samples x = 0, 0.5, 1, 1.5 (clamped to 1).
	g := image.NewGray(image.Rect(0, 0, 2, 1))
	g.Pix[0], g.Pix[1] = 0, 101
	if got := mustResize(t, g, Layout{4, 1, 1}); !bytes.Equal(got, []byte{0, 51, 101, 101}) {
		t.Errorf("2x1 -> 4x1 = %v, want [0 51 101 101]", got)
	}

	// 3x3 -> 2x2 samples y, x = 0 and 1.5.
	g = image.NewGray(image.Rect(0, 0, 3, 3))
	copy(g.Pix, []byte{0, 10, 20, 30, 40, 50, 60, 70, 80})
	// (1.5, 0) = 15; (0, 1.5) = 45; (1.5, 1.5) = (40+50+70+80)/4 = 60.
	if got := mustResize(t, g, Layout{2, 2, 1}); !bytes.Equal(got, []byte{0, 15, 45, 60}) {
		t.Errorf("3x3 -> 2x2 = %v, want [0 15 45 60]", got)
	}
}

func TestResizeConstantStaysConstant(t *testing.T) {
	c := color.RGBA{37, 142, 211, 255}
	srcs := []image.Image{image.NewRGBA(image.Rect(0, 0, 61, 47)), image.NewNRGBA(image.Rect(0, 0, 61, 47))}
	ycc := image.NewYCbCr(image.Rect(0, 0, 61, 47), image.YCbCrSubsampleRatio420)
	yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
	for i := range ycc.Y {
		ycc.Y[i] = yy
	}
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = cb, cr
	}
	r, g, b := color.YCbCrToRGB(yy, cb, cr)
	for _, s := range srcs {
		for y := 0; y < 47; y++ {
			for x := 0; x < 61; x++ {
				s.(interface{ Set(int, int, color.Color) }).Set(x, y, c)
			}
		}
	}
	want := map[image.Image][3]byte{srcs[0]: {c.R, c.G, c.B}, srcs[1]: {c.R, c.G, c.B}, ycc: {r, g, b}}
	for src, w := range want {
		for _, l := range []Layout{{224, 224, 3}, {13, 7, 3}, {1, 1, 3}} {
			out := mustResize(t, src, l)
			for i := 0; i < len(out); i += 3 {
				if [3]byte(out[i:i+3]) != w {
					t.Fatalf("%T -> %v: pixel %d = %v, want %v", src, l, i/3, out[i:i+3], w)
				}
			}
		}
	}
}

func TestResizeGradientMonotonic(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 256, 4))
	for y := 0; y < 4; y++ {
		for x := 0; x < 256; x++ {
			g.Pix[y*g.Stride+x] = uint8(x)
		}
	}
	for _, w := range []int{7, 100, 255, 256, 257, 1000} {
		out := mustResize(t, g, Layout{w, 3, 1})
		for x := 1; x < w; x++ {
			if out[x] < out[x-1] {
				t.Fatalf("width %d: out[%d]=%d < out[%d]=%d", w, x, out[x], x-1, out[x-1])
			}
		}
		if out[0] != 0 {
			t.Errorf("width %d: first = %d, want 0", w, out[0])
		}
	}
}

func TestResizeGrayscaleConversion(t *testing.T) {
	tests := []struct {
		c    color.Color
		want byte
	}{
		{color.RGBA{255, 0, 0, 255}, 76},  // 0.299*255 = 76.2
		{color.RGBA{0, 255, 0, 255}, 150}, // 0.587*255 = 149.7
		{color.RGBA{0, 0, 255, 255}, 29},  // 0.114*255 = 29.1
		{color.RGBA{255, 255, 255, 255}, 255},
		{color.RGBA{0, 0, 0, 255}, 0},
		{color.RGBA{100, 100, 100, 255}, 100},
		{color.NRGBA{0, 0, 0, 0}, 255}, // transparent -> white
	}
	for _, tc := range tests {
		m := image.NewNRGBA(image.Rect(0, 0, 3, 3))
		for i := 0; i < 9; i++ {
			m.Set(i%3, i/3, tc.c)
		}
		if got := mustResize(t, m, Layout{2, 2, 1}); !bytes.Equal(got, bytes.Repeat([]byte{tc.want}, 4)) {
			t.Errorf("%v -> gray %v, want %d", tc.c, got, tc.want)
		}
	}
}

func TestResizeAlphaOntoWhite(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	for _, tc := range []struct {
		c    color.NRGBA
		want []byte
	}{
		{color.NRGBA{0, 0, 0, 0}, []byte{255, 255, 255}},
		{color.NRGBA{255, 0, 0, 128}, []byte{255, 127, 127}},
		{color.NRGBA{0, 0, 0, 255}, []byte{0, 0, 0}},
	} {
		m.SetNRGBA(0, 0, tc.c)
		if got := mustResize(t, m, Layout{1, 1, 3}); !bytes.Equal(got, tc.want) {
			t.Errorf("%v -> %v, want %v", tc.c, got, tc.want)
		}
	}
}

func TestResizePalettedOutOfRange(t *testing.T) {
	// Paletted.At panics on an index beyond the palette; Resize reads such
	// indices as opaque black instead.
	m := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.White})
	m.Pix[1] = 200
	if got := mustResize(t, m, Layout{2, 1, 3}); !bytes.Equal(got, []byte{255, 255, 255, 0, 0, 0}) {
		t.Errorf("got %v", got)
	}
}

func TestResizeErrors(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 4, 4))
	tests := []struct {
		name string
		dst  []byte
		src  image.Image
		l    Layout
	}{
		{"short dst", make([]byte, 11), src, Layout{2, 2, 3}},
		{"long dst", make([]byte, 13), src, Layout{2, 2, 3}},
		{"nil dst", nil, src, Layout{2, 2, 3}},
		{"zero width", nil, src, Layout{0, 2, 3}},
		{"negative height", nil, src, Layout{2, -2, 3}},
		{"two channels", make([]byte, 8), src, Layout{2, 2, 2}},
		{"four channels", make([]byte, 16), src, Layout{2, 2, 4}},
		{"huge layout", nil, src, Layout{1 << 30, 1 << 30, 3}},
		{"empty source", make([]byte, 12), image.NewGray(image.Rect(3, 3, 3, 9)), Layout{2, 2, 3}},
		{"nil source", make([]byte, 12), nil, Layout{2, 2, 3}},
		{"unbounded source", make([]byte, 12), image.NewUniform(color.White), Layout{2, 2, 3}},
	}
	for _, tc := range tests {
		if err := Resize(tc.dst, tc.src, tc.l); err == nil {
			t.Errorf("%s: Resize succeeded", tc.name)
		}
		var r Resizer
		if err := r.Resize(tc.dst, tc.src, tc.l); err == nil {
			t.Errorf("%s: Resizer.Resize succeeded", tc.name)
		}
	}
}

func TestResizeWideLayout(t *testing.T) {
	// Wider than the stack scratch space: takes the allocating path.
	rng := rand.New(rand.NewPCG(5, 5))
	src := randomYCbCr(rng, image.Rect(0, 0, 300, 20), image.YCbCrSubsampleRatio420)
	l := Layout{stackWidth + 300, 3, 3}
	if d, at := maxDiff(mustResize(t, src, l), refResize(src, l)); d > 1 {
		t.Errorf("differs from reference by %d at %d", d, at)
	}
}

func TestResizerReuseAcrossGeometries(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	var r Resizer
	for i := range 50 {
		w, h := 1+rng.IntN(90), 1+rng.IntN(90)
		src := randomYCbCr(rng, image.Rect(rng.IntN(5), rng.IntN(5), w+5, h+5), allRatios[rng.IntN(len(allRatios))])
		l := Layout{1 + rng.IntN(60), 1 + rng.IntN(60), []int{1, 3}[rng.IntN(2)]}
		got := make([]byte, l.Len())
		if err := r.Resize(got, src, l); err != nil {
			t.Fatal(err)
		}
		if want := mustResize(t, src, l); !bytes.Equal(got, want) {
			t.Fatalf("iteration %d: reused Resizer disagrees with a fresh Resize", i)
		}
	}
}

func TestResizeAllocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	srcs := []image.Image{
		randomYCbCr(rng, image.Rect(0, 0, 640, 480), image.YCbCrSubsampleRatio420),
		randomRGBA(rng, image.Rect(0, 0, 64, 48), false),
		randomNRGBA(rng, image.Rect(0, 0, 64, 48)),
		randomGray(rng, image.Rect(0, 0, 64, 48)),
		randomPaletted(rng, image.Rect(0, 0, 64, 48)),
		randomCMYK(rng, image.Rect(0, 0, 64, 48)),
		randomNYCbCrA(rng, image.Rect(0, 0, 64, 48), image.YCbCrSubsampleRatio420),
	}
	l := Layout{224, 224, 3}
	dst := make([]byte, l.Len())
	for _, src := range srcs {
		var r Resizer
		if n := testing.AllocsPerRun(20, func() {
			if err := r.Resize(dst, src, l); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Resizer.Resize(%T) allocates %v times per call, want 0", src, n)
		}
		if n := testing.AllocsPerRun(20, func() {
			if err := Resize(dst, src, l); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Resize(%T) allocates %v times per call, want 0", src, n)
		}
	}
}
