// Package web serves the status page, /healthz and a small JSON API. It is the only package that
// imports echo, so that a move to echo v5 touches nothing else.
package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/streammatch/streammatch/templates"
)

// shutdownTimeout bounds the graceful shutdown: in-flight requests are short, and ECS gives the
// whole task 30 s after SIGTERM, which the stream worker and the store writer also need.
const shutdownTimeout = 5 * time.Second

// Config configures the server.
type Config struct {
	// Addr is the listen address, e.g. ":8080"; "127.0.0.1:0" picks a free port (see Addr).
	Addr   string
	Logger *slog.Logger
}

// Server is the HTTP server. Build it with NewServer, start it with Run.
type Server struct {
	cfg    Config
	logger *slog.Logger
	status Status
	echo   *echo.Echo
	pages  *template.Template
	css    []byte

	// bound is closed once Run has bound the listener (addr is set) or failed to.
	bound     chan struct{}
	boundOnce sync.Once
	addr      net.Addr
}

// NewServer builds the server and parses the templates from templates.FS once: a broken template
// fails here, at start-up, not on the first request.
func NewServer(cfg Config, status Status) (*Server, error) {
	return newServer(cfg, status, templates.FS)
}

// newServer takes the template file system as a parameter so tests can feed it broken templates.
func newServer(cfg Config, status Status, fsys fs.FS) (*Server, error) {
	if status == nil {
		return nil, errors.New("web: nil Status")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pages, err := parseTemplates(fsys)
	if err != nil {
		return nil, err
	}
	css, err := fs.ReadFile(fsys, stylesheetFile)
	if err != nil {
		return nil, fmt.Errorf("read stylesheet: %w", err)
	}

	e := echo.New()
	// The server logs through slog; echo's own banner, port line and logger stay quiet.
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard)

	s := &Server{
		cfg:    cfg,
		logger: logger,
		status: status,
		echo:   e,
		pages:  pages,
		css:    css,
		bound:  make(chan struct{}),
	}
	e.HTTPErrorHandler = s.handleError
	s.routes()
	return s, nil
}

// Run listens on Config.Addr and serves until ctx ends, then shuts down gracefully, giving
// in-flight requests up to 5 s. It returns nil after a clean shutdown. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		s.boundOnce.Do(func() { close(s.bound) })
		return fmt.Errorf("listen on %q: %w", s.cfg.Addr, err)
	}
	s.addr = ln.Addr()
	s.boundOnce.Do(func() { close(s.bound) })
	s.logger.Info("http server listening", "addr", s.addr.String())

	srv := &http.Server{
		Handler: s.echo,
		// Timeouts keep a slow or stalled client from holding a connection (and a goroutine)
		// forever; every response here is small.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(shutdownCtx)
	if shutdownErr != nil {
		// Requests still running after the grace period are cut off.
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("shut down http server: %w", shutdownErr)
	}
	s.logger.Info("http server stopped")
	return nil
}

// Addr returns the bound address once Run is listening, which is how callers learn the port
// chosen for "127.0.0.1:0". It blocks until then, and returns nil if Run failed to listen.
func (s *Server) Addr() net.Addr {
	<-s.bound
	return s.addr
}

// ServeHTTP lets tests (and anyone embedding the server) use it as a plain http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.echo.ServeHTTP(w, r)
}
