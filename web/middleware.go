package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/labstack/echo/v4"
)

// contentSecurityPolicy allows nothing but the page's own stylesheet and images: no script at all,
// no framing, no forms, no <base>. Tweet text is attacker-controlled; html/template escapes it,
// and the CSP is the second wall if an escaping mistake ever slips through.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// securityHeaders sets the hardening headers on every response, errors and static files
// included. It replaces echo's Secure middleware, which sends X-XSS-Protection (OWASP advises
// against it: the filter it enables in old browsers can itself be abused to leak data) and has
// no Cache-Control option. The status page is live data, so nothing is cached.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		return next(c)
	}
}

// logRequests logs each request's method, path, status and duration. Health checks arrive every
// few seconds from ECS and the load balancer, so they log at debug. Only the path is logged,
// never the query string or headers.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			// Let the error handler write the response now, so the status logged is the one
			// sent; returning nil afterwards keeps echo from handling the error twice.
			c.Error(err)
		}
		req := c.Request()
		level := slog.LevelInfo
		if req.URL.Path == "/healthz" {
			level = slog.LevelDebug
		}
		s.logger.LogAttrs(req.Context(), level, "http request",
			slog.String("method", req.Method),
			slog.String("path", req.URL.Path),
			slog.Int("status", c.Response().Status),
			slog.Duration("duration", time.Since(start)),
		)
		return nil
	}
}

// recoverPanics turns a panic in a handler into a 500 answered by the error handler, and logs the
// stack, so one bad request cannot take the process (and the stream worker) down.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				panic(r)
			}
			stack := make([]byte, 4<<10)
			stack = stack[:runtime.Stack(stack, false)]
			s.logger.Error("http handler panicked",
				"path", c.Request().URL.Path, "panic", fmt.Sprint(r), "stack", string(stack))
			err = echo.NewHTTPError(http.StatusInternalServerError)
		}()
		return next(c)
	}
}
