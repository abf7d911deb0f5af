// Package templates holds the status page's HTML templates and stylesheet, embedded into the
// binary so the distroless image needs no files beside it. The web package parses them once, at
// start-up.
package templates

import "embed"

// FS holds every page template (*.html) and the stylesheet served under /static/.
//
//go:embed *.html *.css
var FS embed.FS
