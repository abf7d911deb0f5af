package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// The limits of GET /api/matches?limit=N.
const (
	defaultMatchLimit = 20
	maxMatchLimit     = 100
)

// routes registers every route and middleware. It is the one place to look for what the server
// answers.
func (s *Server) routes() {
	e := s.echo
	e.Use(securityHeaders, s.logRequests, s.recoverPanics)

	e.GET("/", s.handleStatusPage)
	e.GET("/static/"+stylesheetFile, s.handleStylesheet)
	e.GET("/healthz", s.handleHealthz)
	e.HEAD("/healthz", s.handleHealthz)
	e.GET("/api/status", s.handleStatusJSON)
	e.GET("/api/matches", s.handleMatches)
}

// handleStatusPage renders the HTML status page.
func (s *Server) handleStatusPage(c echo.Context) error {
	report := s.status.Report()
	title := "streammatch"
	if report.Health.Status != "" && report.Health.Status != HealthOK {
		title = "streammatch (" + string(report.Health.Status) + ")"
	}
	data := statusPage{
		Title:   title,
		Report:  report,
		Matches: s.status.RecentMatches(pageMatchLimit),
		Refresh: 30,
	}
	return s.render(c, http.StatusOK, statusTemplate, data)
}

// handleStylesheet serves the page's CSS, embedded with the templates. Only this one file is
// served: the template sources beside it are not.
func (s *Server) handleStylesheet(c echo.Context) error {
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", s.css)
}

// handleHealthz answers the container and load-balancer health checks. Degraded answers 200: a
// rejected credential or a throttled table will not be fixed by a restart, and a 503 would make
// ECS replace the task in a loop. Only unhealthy answers 503.
func (s *Server) handleHealthz(c echo.Context) error {
	h := s.status.Report().Health
	code := http.StatusOK
	if h.Status != HealthOK && h.Status != HealthDegraded {
		code = http.StatusServiceUnavailable
		if h.Status == "" {
			// A Status that reports nothing is a bug in main, not a healthy process.
			h = Health{Status: HealthUnhealthy, Detail: "no health reported"}
		}
	}
	if c.Request().Method == http.MethodHead {
		return c.NoContent(code)
	}
	return c.JSON(code, h)
}

// handleStatusJSON returns the Report as JSON.
func (s *Server) handleStatusJSON(c echo.Context) error {
	r := s.status.Report()
	// Lists are [] rather than null, so scripts can iterate without a null check.
	if r.Secrets == nil {
		r.Secrets = []SecretInfo{}
	}
	if r.Track == nil {
		r.Track = []string{}
	}
	return c.JSON(http.StatusOK, r)
}

// handleMatches returns the most recent matches, newest first.
func (s *Server) handleMatches(c echo.Context) error {
	limit, err := parseLimit(c.QueryParam("limit"))
	if err != nil {
		return err
	}
	matches := s.status.RecentMatches(limit)
	if matches == nil {
		matches = []MatchView{}
	}
	return c.JSON(http.StatusOK, matches)
}

// parseLimit reads the limit parameter: empty means the default, anything else must be an
// integer in [1, maxMatchLimit]. The error names the parameter and the range, never the value
// given.
func parseLimit(raw string) (int, error) {
	if raw == "" {
		return defaultMatchLimit, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxMatchLimit {
		return 0, echo.NewHTTPError(http.StatusBadRequest,
			fmt.Sprintf("query parameter limit must be an integer from 1 to %d (default %d)", maxMatchLimit, defaultMatchLimit))
	}
	return n, nil
}

// render executes a page template into a buffer first, so that a template error becomes a clean
// 500 rather than half a page.
func (s *Server) render(c echo.Context, code int, name string, data any) error {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	return c.HTMLBlob(code, buf.Bytes())
}

// errorBody is the JSON error response of /api and /healthz.
type errorBody struct {
	Error string `json:"error"`
}

// handleError is the one error handler. It answers JSON under /api and /healthz and an HTML page
// elsewhere. The message comes from the server's own echo.HTTPError values (never from request
// data); any other error is logged and answered with a generic 500, so internal details do not
// reach the client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	message := http.StatusText(code)
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		if m, ok := he.Message.(string); ok && m != "" {
			message = m
		} else {
			message = http.StatusText(code)
		}
	} else {
		s.logger.Error("http handler failed", "path", c.Request().URL.Path, "error", err)
	}

	req := c.Request()
	var writeErr error
	switch {
	case req.Method == http.MethodHead:
		writeErr = c.NoContent(code)
	case wantsJSON(req.URL.Path):
		writeErr = c.JSON(code, errorBody{Error: message})
	default:
		writeErr = s.render(c, code, errorTemplate, errorPage{
			Title:   fmt.Sprintf("%d %s", code, http.StatusText(code)),
			Code:    code,
			Message: message,
		})
		if writeErr != nil {
			// The error page itself failed: fall back to plain text that holds no request data.
			writeErr = c.String(code, message)
		}
	}
	if writeErr != nil {
		s.logger.Warn("write error response", "path", req.URL.Path, "error", writeErr)
	}
}

// wantsJSON reports whether path belongs to the machine-read part of the server.
func wantsJSON(path string) bool {
	return path == "/healthz" || path == "/api" || strings.HasPrefix(path, "/api/")
}
