// Package httpapi serves edgeinfer on the LAN: the status page, the JSON
// API (status, classify, last frame, reload), Prometheus metrics and the
// health endpoints. Pages are rendered on the server from embedded
// templates; nothing is loaded from the internet and the page works with
// JavaScript off (it refreshes itself with a meta tag).
//
// When a token is configured, the endpoints that act (classify, reload)
// require "Authorization: Bearer <token>"; status, the page, the last
// frame, metrics and health stay readable without it.
package httpapi

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/classify"
	"github.com/edgeinfer/edgeinfer/edge/pipeline"
	"github.com/edgeinfer/edgeinfer/edge/source"
	"github.com/edgeinfer/edgeinfer/edge/status"
)

//go:embed web
var webFS embed.FS

// Requester classifies a frame for a waiting caller; the pipeline.
type Requester interface {
	Request(ctx context.Context, f source.Frame) (edge.Result, error)
}

// Daemon is what the server asks the rest of the daemon.
type Daemon interface {
	Status() Status
	// Reload reloads configuration and model; an error leaves the old ones.
	Reload(ctx context.Context) error
	// Ready reports nil when the daemon can classify and makes progress.
	Ready() error
}

// Config configures the server.
type Config struct {
	Token          string
	MaxBodyBytes   int64
	RequestTimeout time.Duration
}

// Server is the HTTP handler.
type Server struct {
	cfg      Config
	req      Requester
	daemon   Daemon
	recorder *status.Recorder
	gatherer prometheus.Gatherer
	log      *slog.Logger
	page     *template.Template
	mux      *http.ServeMux
	counts   *prometheus.CounterVec
	// requests numbers classify requests: the frame id of each, and the
	// request id of those without X-Request-ID.
	requests atomic.Uint64
}

// New returns the server's handler. reg receives the HTTP metrics and
// gatherer serves /metrics.
func New(cfg Config, req Requester, d Daemon, rec *status.Recorder, reg prometheus.Registerer, gatherer prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	page, err := template.New("page.html").Funcs(template.FuncMap{
		"ms":      func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"pct":     func(f float32) string { return strconv.FormatFloat(float64(f)*100, 'f', 1, 64) + "%" },
		"ago":     ago,
		"short":   func(s string) string { return s[:min(len(s), 12)] },
		"percent": func(f float32) string { return strconv.FormatFloat(float64(f)*100, 'f', 0, 64) },
	}).ParseFS(webFS, "web/page.html")
	if err != nil {
		return nil, fmt.Errorf("httpapi: templates: %w", err)
	}
	s := &Server{
		cfg: cfg, req: req, daemon: d, recorder: rec, gatherer: gatherer, log: log, page: page, mux: http.NewServeMux(),
		counts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgeinfer_http_requests_total",
			Help: "HTTP requests by handler and status code.",
		}, []string{"handler", "code"}),
	}
	reg.MustRegister(s.counts)
	s.handle("GET /{$}", "page", s.servePage)
	s.handle("GET /static/", "static", http.FileServerFS(mustSub(webFS, "web")).ServeHTTP)
	s.handle("GET /api/v1/status", "status", s.serveStatus)
	s.handle("POST /api/v1/classify", "classify", s.auth(s.serveClassify))
	s.handle("GET /api/v1/frame.jpg", "frame", s.serveFrame)
	s.handle("POST /api/v1/reload", "reload", s.auth(s.serveReload))
	s.handle("GET /healthz", "healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	s.handle("GET /readyz", "readyz", s.serveReady)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// NewHTTPServer wraps h in an http.Server with the timeouts a LAN service
// exposed to arbitrary clients needs.
func NewHTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// codeRecorder remembers the status code for the metrics.
type codeRecorder struct {
	http.ResponseWriter
	code int
}

func (c *codeRecorder) WriteHeader(code int) {
	c.code = code
	c.ResponseWriter.WriteHeader(code)
}

func (s *Server) handle(pattern, name string, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		cr := &codeRecorder{ResponseWriter: w, code: http.StatusOK}
		h(cr, r)
		s.counts.WithLabelValues(name, strconv.Itoa(cr.code)).Inc()
	})
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Token == "" {
		return h
	}
	want := []byte("Bearer " + s.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edgeinfer"`)
			writeError(w, http.StatusUnauthorized, "", errors.New("missing or wrong bearer token"))
			return
		}
		h(w, r)
	}
}

// ErrorBody is the JSON of every error response.
type ErrorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

func writeError(w http.ResponseWriter, code int, requestID string, err error) {
	writeJSON(w, code, ErrorBody{Error: err.Error(), RequestID: requestID})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client may be gone; nothing to do about it
}

func (s *Server) serveClassify(w http.ResponseWriter, r *http.Request) {
	frameID := s.requests.Add(1)
	reqID := r.Header.Get("X-Request-ID")
	if reqID == "" || len(reqID) > 128 {
		reqID = "http-" + strconv.FormatUint(frameID, 10)
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	data, err := readImage(r)
	if err != nil {
		code := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			code = http.StatusRequestEntityTooLarge
			err = fmt.Errorf("image larger than %d bytes", s.cfg.MaxBodyBytes)
		}
		writeError(w, code, reqID, err)
		return
	}
	if len(data) == 0 {
		writeError(w, http.StatusUnprocessableEntity, reqID, errors.New("empty body: send the image as the body or as multipart field \"image\""))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	res, err := s.req.Request(ctx, source.Frame{
		Kind: source.KindHTTP, Source: source.KindHTTP, ID: frameID, RequestID: reqID, CapturedAt: time.Now(), Data: data,
	})
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.Is(err, classify.ErrBadImage):
		writeError(w, http.StatusUnprocessableEntity, reqID, err)
	case errors.Is(err, pipeline.ErrOverloaded):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, reqID, err)
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, reqID, fmt.Errorf("timed out after %s", s.cfg.RequestTimeout))
	case errors.Is(err, context.Canceled):
		writeError(w, http.StatusServiceUnavailable, reqID, errors.New("request cancelled"))
	default:
		s.log.Error("classify failed", "request_id", reqID, "err", err)
		writeError(w, http.StatusInternalServerError, reqID, err)
	}
}

// readImage returns the image of a classify request: the multipart field
// "image" (the shape of the classic Flask /predict demo: curl -F
// image=@x.jpg), else the whole body.
func readImage(r *http.Request) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return io.ReadAll(r.Body)
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fmt.Errorf("multipart: %w", err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, errors.New(`multipart body has no field "image"`)
		}
		if err != nil {
			return nil, fmt.Errorf("multipart: %w", err)
		}
		if part.FormName() == "image" {
			data, err := io.ReadAll(part)
			part.Close()
			return data, err
		}
		part.Close()
	}
}

func (s *Server) serveFrame(w http.ResponseWriter, _ *http.Request) {
	data, typ := s.recorder.LastFrame()
	if data == nil {
		writeError(w, http.StatusNotFound, "", errors.New("no frame classified yet"))
		return
	}
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

func (s *Server) serveReload(w http.ResponseWriter, r *http.Request) {
	if err := s.daemon.Reload(r.Context()); err != nil {
		writeError(w, http.StatusConflict, "", fmt.Errorf("reload failed, still serving the previous model: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, s.daemon.Status())
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	if err := s.daemon.Ready(); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.daemon.Status())
}

func (s *Server) servePage(w http.ResponseWriter, _ *http.Request) {
	st := s.daemon.Status()
	var b strings.Builder
	if err := s.page.Execute(&b, st); err != nil {
		s.log.Error("status page", "err", err)
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, b.String())
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	}
	return fmt.Sprintf("%dh ago", int(d.Hours()))
}

func mustSub(fsys embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}
