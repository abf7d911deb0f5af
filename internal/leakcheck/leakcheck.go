// Package leakcheck is the tests' search for secret values in output: each value in every form
// a leak could take (plain, base64, URL-escaped, hex). A failure names where and how long the
// form was, never the form itself.
package leakcheck

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// Forms returns each value and the encodings a leak could take.
func Forms(values ...string) []string {
	var forms []string
	for _, v := range values {
		forms = append(forms, v, base64.StdEncoding.EncodeToString([]byte(v)), base64.URLEncoding.EncodeToString([]byte(v)),
			base64.RawStdEncoding.EncodeToString([]byte(v)), url.QueryEscape(v), url.PathEscape(v), fmt.Sprintf("%x", v))
	}
	return forms
}

// Assert fails for every output (name -> text) that holds one of the values in any form.
func Assert(t testing.TB, values []string, outputs map[string]string) {
	t.Helper()
	forms := Forms(values...)
	for where, text := range outputs {
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("%s contains a secret value (a form of length %d)", where, len(f))
			}
		}
	}
}

// Redact replaces every form of the values in text, for failure messages.
func Redact(text string, values ...string) string {
	for _, f := range Forms(values...) {
		text = strings.ReplaceAll(text, f, "[SECRET]")
	}
	return text
}
