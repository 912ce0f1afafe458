package source

import (
	"net/url"
	"strings"
)

// RedactURL returns raw fit for logs, errors and the status page: a
// parseable URL as url.URL.Redacted shows it ("rtsp://admin:xxxxx@cam/"),
// and anything else with every character up to its last "@" hidden, since
// "admin:pass@cam/x" parses as an opaque URL and "rtsp://u:p%zz@cam/"
// does not parse at all: Redacted would show both passwords.
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Opaque == "" {
		return u.Redacted()
	}
	j := strings.LastIndex(raw, "@")
	if j < 0 {
		return raw
	}
	prefix := ""
	if i := strings.Index(raw, "://"); i >= 0 && i < j {
		prefix = raw[:i+3]
	}
	return prefix + "xxxxx@" + raw[j+1:]
}
