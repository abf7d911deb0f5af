package fingerprint

import (
	"regexp"
	"strings"
	"testing"
)

// TestFingerprint_KnownAnswer pins the output: operators compare fingerprints computed by
// different builds, so any change to the scheme must be deliberate (and bump the prefix).
// The first vector was cross-checked with the reference argon2 CLI (Debian package argon2),
// which refuses an empty password, so the second is pinned from this implementation:
//
//	printf %s VALUE | argon2 streammatch/fingerprint/v2/NAME -id -t 5 -k 7168 -p 1 -l 8
func TestFingerprint_KnownAnswer(t *testing.T) {
	tests := []struct {
		name, varName, value, want string
	}{
		{name: "consumer key", varName: "CONSUMERKEY", value: "xvz1evFS4wEEPTGEFPHBog", want: "fp2:a72e342e612680fc"},
		{name: "empty value", varName: "ACCESSTOKEN", value: "", want: "fp2:dc9b08f8a1b60134"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.varName, tt.value); got != tt.want {
				t.Errorf("Of(%q, <value>) = %q, want %q", tt.varName, got, tt.want)
			}
		})
	}
}

func TestFingerprint_NameChangesOutput(t *testing.T) {
	a := Of("CONSUMERKEY", "same-value")
	b := Of("CONSUMERSECRET", "same-value")
	if a == b {
		t.Errorf("same value under two names gave the same fingerprint %q; want different", a)
	}
}

func TestFingerprint_ValueChangesOutput(t *testing.T) {
	a := Of("CONSUMERKEY", "value-one")
	b := Of("CONSUMERKEY", "value-two")
	if a == b {
		t.Errorf("two values under one name gave the same fingerprint %q; want different", a)
	}
}

func TestFingerprint_Stable(t *testing.T) {
	a := Of("ACCESSSECRET", "s3cr3t")
	b := Of("ACCESSSECRET", "s3cr3t")
	if a != b {
		t.Errorf("fingerprint not stable: got %q then %q", a, b)
	}
}

func TestFingerprint_NeverContainsValue(t *testing.T) {
	// Hex-looking values would show up in the output if the scheme ever degenerated into an
	// encoding of the value rather than a hash of it.
	values := []string{"hunter2", "deadbeef", "0123456789abcdef", "xvz1evFS4wEEPTGEFPHBog"}
	for _, v := range values {
		t.Run(v, func(t *testing.T) {
			if got := Of("ACCESSTOKEN", v); strings.Contains(got, v) {
				t.Errorf("Fingerprint output %q contains the value", got)
			}
		})
	}
}

func TestFingerprint_Format(t *testing.T) {
	format := regexp.MustCompile(`^fp2:[0-9a-f]{16}$`)
	for _, name := range []string{"CONSUMERKEY", "", "ünïcode"} {
		got := Of(name, "value")
		if !format.MatchString(got) {
			t.Errorf("Of(%q, ...) = %q, want match for %s", name, got, format)
		}
	}
}
