package scripts

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
)

// The IAM policy documents of both roles live once, as templates in policies/, and every user
// renders them from there: scripts/create-roles.sh (with render_template in lib.sh) for a
// deployment, and `go run ./local` (through Policy) for the local run. A test that proves a
// document least-privileged therefore proves it for both.
//
// A template is a whole policy document with ${NAME} placeholders inside JSON strings. Its
// "Statement" list is its last member, written `"Statement": [`, so that the shell can merge
// the statements of several templates into one inline policy without a JSON tool; the tests
// hold every template to that layout.
//
//go:embed policies/*.json
var policyFiles embed.FS

// placeholder matches ${NAME}, the same syntax taskdef.json and register-taskdef.sh use.
var placeholder = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// PolicyNames returns the names of the policy templates (the file names in policies/ without
// .json), sorted.
func PolicyNames() []string {
	entries, err := fs.ReadDir(policyFiles, "policies")
	if err != nil {
		// The directory is embedded at build time; it cannot be missing at run time.
		panic(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	slices.Sort(names)
	return names
}

// PolicyTemplate returns the unrendered text of the template name, as create-roles.sh reads it.
func PolicyTemplate(name string) (string, error) {
	b, err := policyFiles.ReadFile(path.Join("policies", name+".json"))
	if err != nil {
		return "", fmt.Errorf("policy %s: no such template (have %s)", name, strings.Join(PolicyNames(), ", "))
	}
	return string(b), nil
}

// Policy renders the template policies/NAME.json: every ${KEY} becomes vars[KEY], escaped as
// the inside of a JSON string. A placeholder without a value, or with an empty one, is an
// error naming it: an empty ARN would make IAM reject the document or, worse, match nothing
// the reader expects. Values the template does not use are ignored, so one map can serve
// several templates. The result is the template's text with the values filled in, checked
// to be valid JSON.
func Policy(name string, vars map[string]string) (string, error) {
	text, err := PolicyTemplate(name)
	if err != nil {
		return "", err
	}
	var problems []string
	out := placeholder.ReplaceAllStringFunc(text, func(m string) string {
		key := placeholder.FindStringSubmatch(m)[1]
		value, ok := vars[key]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("no value for placeholder ${%s}", key))
			return m
		case value == "":
			problems = append(problems, fmt.Sprintf("placeholder ${%s} has an empty value", key))
			return m
		}
		return jsonStringContent(value)
	})
	if len(problems) > 0 {
		slices.Sort(problems)
		return "", fmt.Errorf("policy %s: %s", name, strings.Join(slices.Compact(problems), "; "))
	}
	if !json.Valid([]byte(out)) {
		return "", fmt.Errorf("policy %s: the rendered document is not valid JSON", name)
	}
	return out, nil
}

// MergePolicies returns one policy document holding the statements of every document given,
// in order: the execution role's single inline policy is several templates merged, as
// create-roles.sh merges them. The documents must share one Version.
func MergePolicies(docs ...string) (string, error) {
	type document struct {
		Version   string            `json:"Version"`
		Statement []json.RawMessage `json:"Statement"`
	}
	if len(docs) == 0 {
		return "", errors.New("merge policies: no document")
	}
	var merged document
	for i, d := range docs {
		var doc document
		if err := json.Unmarshal([]byte(d), &doc); err != nil {
			return "", fmt.Errorf("merge policies: document %d: %w", i+1, err)
		}
		if i > 0 && doc.Version != merged.Version {
			return "", fmt.Errorf("merge policies: document %d has Version %q, the first %q", i+1, doc.Version, merged.Version)
		}
		merged.Version = doc.Version
		merged.Statement = append(merged.Statement, doc.Statement...)
	}
	b, err := json.Marshal(merged)
	if err != nil {
		return "", fmt.Errorf("merge policies: %w", err)
	}
	return string(b), nil
}

// jsonStringContent returns s encoded as the inside of a JSON string (without the quotes),
// like json_escape in lib.sh. HTML characters are left alone: policies are not HTML.
func jsonStringContent(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(b.String(), "\n"), `"`), `"`)
}
