package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
)

// secretKeys are the JSON keys of the secret and the variables the app receives, as in
// scripts/lib.sh.
var secretKeys = []string{"CONSUMERKEY", "CONSUMERSECRETKEY", "ACCESSTOKEN", "ACCESSTOKENSECRET"}

// twitterCredentials holds the four values. Its String never shows them, so that printing it by
// mistake (%v in an error) leaks nothing.
type twitterCredentials map[string]string

func (c twitterCredentials) String() string { return "[4 credentials hidden]" }

func (c twitterCredentials) GoString() string { return c.String() }

// readSecretsFile reads a dotenv file: NAME=value lines, optionally prefixed with "export ",
// values optionally in matching single or double quotes, '#' comments and blank lines. It
// returns the four credentials and warnings (names and line numbers only: a value never
// appears in a warning or an error).
func readSecretsFile(path string) (twitterCredentials, []string, error) {
	var warnings []string
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("-secrets: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		warnings = append(warnings, fmt.Sprintf("%s is readable or writable by others (mode %04o); restrict it with: chmod 600 %s", path, perm, path))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("-secrets: %w", err)
	}
	creds := twitterCredentials{}
	seen := map[string]bool{}
	var problems []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			problems = append(problems, fmt.Sprintf("line %d is not NAME=value", n))
			continue
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		known := false
		for _, k := range secretKeys {
			known = known || k == name
		}
		if !known {
			warnings = append(warnings, fmt.Sprintf("%s line %d: %s is not one of %s; ignored", path, n, name, strings.Join(secretKeys, ", ")))
			continue
		}
		seen[name] = true
		if value == "" {
			problems = append(problems, fmt.Sprintf("line %d: %s is empty", n, name))
			continue
		}
		creds[name] = value
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("-secrets %s: %w", path, err)
	}
	for _, k := range secretKeys {
		if !seen[k] {
			problems = append(problems, k+" is missing")
		}
	}
	if len(problems) > 0 {
		return nil, warnings, errors.New("-secrets " + path + ": want NAME=value lines for " + strings.Join(secretKeys, ", ") + ":\n  - " + strings.Join(problems, "\n  - "))
	}
	return creds, warnings, nil
}

// randomCredentials makes four values shaped like Twitter's (a 25-character consumer key,
// a 50-character consumer secret, a "USERID-..." access token and a 45-character token secret)
// from crypto/rand. They exist only in the emulator, the simulator and the app's environment.
func randomCredentials() (twitterCredentials, error) {
	userID, err := randomString("0123456789", 19)
	if err != nil {
		return nil, err
	}
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	out := twitterCredentials{}
	for name, n := range map[string]int{"CONSUMERKEY": 25, "CONSUMERSECRETKEY": 50, "ACCESSTOKEN": 40, "ACCESSTOKENSECRET": 45} {
		v, err := randomString(alnum, n)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	out["ACCESSTOKEN"] = "1" + userID[1:] + "-" + out["ACCESSTOKEN"]
	return out, nil
}

func randomString(alphabet string, n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		k, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("random credentials: %w", err)
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b), nil
}
