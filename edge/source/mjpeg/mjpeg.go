// Package mjpeg splits a byte stream of concatenated JPEG images, as
// written by `ffmpeg -f mjpeg -` or `rpicam-vid --codec mjpeg -o -`, into
// frames.
//
// The Scanner follows the JPEG marker structure rather than searching for
// the EOI bytes FF D9: those bytes also end the thumbnail embedded in an
// EXIF segment, and a progressive JPEG has several scans. It does not
// decode anything, so a frame it returns is well delimited, not
// necessarily a valid image.
package mjpeg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrame is the frame size limit NewScanner uses when given none.
const DefaultMaxFrame = 8 << 20

// ErrFrameTooLarge is wrapped by the error Next returns for a frame larger
// than the Scanner's limit. The frame has been skipped and Next can be
// called again.
var ErrFrameTooLarge = errors.New("mjpeg: frame too large")

// errResync reports a malformed frame internally; Next drops it and looks
// for the next SOI.
var errResync = errors.New("mjpeg: malformed frame")

const (
	// minRead is the least free space the buffer offers a Read, so that a
	// byte-at-a-time tail does not turn into byte-at-a-time reads.
	minRead = 4 << 10
	// initialBuf fits a typical 640x480 frame; the buffer grows on demand
	// but never starts larger than a frame needs.
	initialBuf = 64 << 10
	// maxNoProgress is how many empty reads in a row are tolerated, as in
	// bufio.
	maxNoProgress = 100
)

// JPEG markers (the byte after 0xFF) that matter for framing.
const (
	markerTEM  = 0x01
	markerRST0 = 0xD0
	markerRST7 = 0xD7
	markerSOI  = 0xD8
	markerEOI  = 0xD9
	markerSOS  = 0xDA
)

// Scanner reads JPEG images one after another from a stream such as
// `ffmpeg -f mjpeg -` or `rpicam-vid --codec mjpeg -o -` writes.
// A Scanner is not safe for concurrent use.
type Scanner struct {
	r   io.Reader
	max int
	err error // first error from r; sticky

	// buf[start:end] holds the current frame so far followed by data read
	// ahead; pos is the parse position within it. Between frames start is
	// pos, so garbage is never kept.
	buf             []byte
	start, pos, end int

	// discarding is set once the current frame exceeds max: from then on
	// its bytes are dropped as they are parsed, and dropped counts them.
	discarding bool
	dropped    int
}

// NewScanner returns a Scanner reading from r that skips frames larger than
// maxFrame bytes. maxFrame <= 0 means DefaultMaxFrame.
func NewScanner(r io.Reader, maxFrame int) *Scanner {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &Scanner{r: r, max: maxFrame}
}

// Next returns the next complete JPEG, from its SOI marker to its EOI
// marker inclusive. The slice is only valid until the next call of Next.
//
// Bytes before an SOI are skipped, as are malformed frames. A frame larger
// than the limit is skipped and reported by an error wrapping
// ErrFrameTooLarge; Next can then be called again. At the end of the
// stream Next returns io.EOF, or io.ErrUnexpectedEOF if the stream ended
// inside a frame. Other read errors are returned as they are, and again
// on every later call.
func (s *Scanner) Next() ([]byte, error) {
	for {
		if err := s.seekSOI(); err != nil {
			return nil, err
		}
		frame, err := s.frame()
		if err == errResync {
			continue
		}
		return frame, err
	}
}

// seekSOI advances to the next SOI marker, dropping whatever precedes it.
func (s *Scanner) seekSOI() error {
	for {
		s.start = s.pos
		if !s.fill(2) {
			if s.err == io.EOF {
				// Trailing garbage, a lone 0xFF included, is still a frame
				// boundary.
				s.start, s.pos = s.end, s.end
			}
			return s.err
		}
		i := bytes.IndexByte(s.buf[s.pos:s.end-1], 0xFF)
		if i < 0 {
			s.pos = s.end - 1 // the last byte may be the 0xFF of an SOI
			continue
		}
		s.pos += i
		if s.buf[s.pos+1] == markerSOI {
			s.start = s.pos
			s.discarding, s.dropped = false, 0
			return nil
		}
		s.pos++
	}
}

// frame parses the frame whose SOI is at s.pos, up to and including EOI.
func (s *Scanner) frame() ([]byte, error) {
	s.pos += 2
	for {
		if !s.fill(2) {
			return nil, s.truncated()
		}
		if s.buf[s.pos] != 0xFF {
			// Only markers may follow a segment or a scan.
			return nil, s.abandon(s.start + 2)
		}
		m := s.buf[s.pos+1]
		switch {
		case m == 0xFF:
			s.pos++ // fill byte; the marker follows
		case m == markerSOI:
			// The frame was cut short and a new one starts here.
			return nil, s.abandon(s.pos)
		case m == markerEOI:
			s.pos += 2
			return s.finish()
		case m >= markerRST0 && m <= markerRST7, m == markerTEM:
			s.pos += 2 // standalone marker, no length
		case m == 0x00:
			return nil, s.abandon(s.start + 2)
		default:
			if !s.fill(4) {
				return nil, s.truncated()
			}
			n := int(binary.BigEndian.Uint16(s.buf[s.pos+2:]))
			if n < 2 {
				return nil, s.abandon(s.start + 2)
			}
			s.pos += 2
			if !s.skip(n) {
				return nil, s.truncated()
			}
			if m == markerSOS && !s.skipScan() {
				return nil, s.truncated()
			}
		}
	}
}

// skipScan advances over entropy-coded data to the marker that ends it.
// In that data 0xFF is followed by 0x00 (a stuffed 0xFF byte) or a restart
// marker; anything else is a real marker: EOI, or for a progressive JPEG
// the DHT or SOS of the next scan.
func (s *Scanner) skipScan() bool {
	for {
		if !s.fill(1) {
			return false
		}
		i := bytes.IndexByte(s.buf[s.pos:s.end], 0xFF)
		if i < 0 {
			s.pos = s.end
			continue
		}
		s.pos += i
		if !s.fill(2) {
			return false
		}
		switch b := s.buf[s.pos+1]; {
		case b == 0x00, b >= markerRST0 && b <= markerRST7:
			s.pos += 2
		case b == 0xFF:
			s.pos++ // fill byte before a marker
		default:
			return true
		}
	}
}

// skip advances over n bytes of a marker segment.
func (s *Scanner) skip(n int) bool {
	for n > 0 {
		if s.pos == s.end && !s.fill(1) {
			return false
		}
		k := min(n, s.end-s.pos)
		s.pos += k
		n -= k
	}
	return true
}

// size is the length of the current frame so far.
func (s *Scanner) size() int { return s.dropped + s.pos - s.start }

// finish returns the frame that ends at s.pos.
func (s *Scanner) finish() ([]byte, error) {
	if s.discarding || s.size() > s.max {
		return nil, s.tooLarge()
	}
	frame := s.buf[s.start:s.pos:s.pos]
	s.start = s.pos
	return frame, nil
}

// abandon drops the current frame, which is malformed, and resumes
// parsing at resume. When the frame merely breaks off where a new SOI
// starts, that SOI is where to resume; otherwise it is just after the
// frame's own SOI, because a stray FF D8 in garbage must not hide a real
// frame that follows. A frame too large has been dropped already, and is
// reported.
func (s *Scanner) abandon(resume int) error {
	if s.discarding || s.size() > s.max {
		return s.tooLarge()
	}
	s.pos = resume
	return errResync
}

func (s *Scanner) tooLarge() error {
	n := s.size()
	s.start = s.pos
	s.discarding, s.dropped = false, 0
	return fmt.Errorf("mjpeg: skipped a frame of %d bytes, limit %d: %w", n, s.max, ErrFrameTooLarge)
}

// truncated reports a read error inside a frame and drops the frame.
func (s *Scanner) truncated() error {
	s.start, s.pos = s.end, s.end
	s.discarding, s.dropped = false, 0
	if s.err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return s.err
}

// fill reads until at least n bytes are buffered at s.pos, keeping the
// current frame unless it is being discarded. It reports false if the
// reader failed first; s.err says why.
func (s *Scanner) fill(n int) bool {
	empty := 0
	for s.end-s.pos < n {
		if s.err != nil {
			return false
		}
		if !s.discarding && s.size() > s.max {
			s.discarding = true
		}
		if s.discarding {
			s.dropped += s.pos - s.start
			s.start = s.pos
		}
		if len(s.buf)-s.end < max(minRead, n) {
			s.makeRoom(n)
		}
		m, err := s.r.Read(s.buf[s.end:])
		s.end += m
		switch {
		case err != nil:
			s.err = err
		case m > 0:
			empty = 0
		default:
			if empty++; empty >= maxNoProgress {
				s.err = io.ErrNoProgress
			}
		}
	}
	return true
}

// makeRoom moves the kept bytes to the front of the buffer, growing it if
// that would not leave room for a read of at least n bytes. The kept part
// is at most a frame of max bytes and a few bytes read ahead, so the
// buffer stays bounded.
func (s *Scanner) makeRoom(n int) {
	keep := s.end - s.start
	if want := keep + max(minRead, n); want > len(s.buf) {
		size := max(2*len(s.buf), min(initialBuf, s.max+minRead))
		for size < want {
			size *= 2
		}
		buf := make([]byte, size)
		copy(buf, s.buf[s.start:s.end])
		s.buf = buf
	} else {
		copy(s.buf, s.buf[s.start:s.end])
	}
	s.pos -= s.start
	s.end -= s.start
	s.start = 0
}
