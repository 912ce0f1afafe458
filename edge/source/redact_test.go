package source

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"rtsp://admin:s3cret@cam/live":  "rtsp://admin:xxxxx@cam/live",
		"rtsp://cam/live":               "rtsp://cam/live",
		"admin:s3cret@cam/x":            "xxxxx@cam/x",
		"rtsp://admin:s3%zz@cam/x":      "rtsp://xxxxx@cam/x",
		"rtsp://admin:s3cret@cam:bad/x": "rtsp://xxxxx@cam:bad/x",
		"u:s3cret@host:1883":            "xxxxx@host:1883",
		"rtsp://cam:bad/x":              "rtsp://cam:bad/x",
	} {
		got := RedactURL(raw)
		if got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
		if strings.Contains(got, "s3") {
			t.Errorf("RedactURL(%q) shows the password", raw)
		}
	}
}
