package fingerprint

import (
	"regexp"
	"strings"
	"testing"
)

// sourceA and sourceB are two deployments' references to the same key: the Secrets Manager ARNs
// differ only in the random suffix.
const (
	sourceA = "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf:CONSUMERKEY::"
	sourceB = "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-XyZ123:CONSUMERKEY::"
)

// TestFingerprint_KnownAnswer pins the output: operators compare fingerprints computed by
// different builds, so any change to the scheme must be deliberate (and bump the prefix).
// The vectors with a value were cross-checked with the reference argon2 CLI (Debian package
// argon2), which refuses an empty password, so the last is pinned from this implementation:
//
//	SALT="streammatch/fingerprint/v3/NAME"$'\n'"SOURCE"
//	printf %s VALUE | argon2 "$SALT" -id -t 5 -k 7168 -p 1 -l 8 -r
func TestFingerprint_KnownAnswer(t *testing.T) {
	tests := []struct {
		name, varName, source, value, want string
	}{
		{name: "consumer key from a secret", varName: "CONSUMERKEY", source: sourceA, value: "xvz1evFS4wEEPTGEFPHBog", want: "fp3:c5f2cc364dab864b"},
		{name: "same value, another deployment", varName: "CONSUMERKEY", source: sourceB, value: "xvz1evFS4wEEPTGEFPHBog", want: "fp3:51fe79f9bbdc0987"},
		{name: "no source", varName: "CONSUMERKEY", source: "", value: "xvz1evFS4wEEPTGEFPHBog", want: "fp3:73a84acde47c01bb"},
		{name: "empty value", varName: "ACCESSTOKEN", source: "", value: "", want: "fp3:c3ae0ff6327ff102"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.varName, tt.source, tt.value); got != tt.want {
				t.Errorf("Of(%q, %q, <value>) = %q, want %q", tt.varName, tt.source, got, tt.want)
			}
		})
	}
}

func TestFingerprint_SaltIsNameNewlineSource(t *testing.T) {
	if got, want := Salt("CONSUMERKEY", sourceA), "streammatch/fingerprint/v3/CONSUMERKEY\n"+sourceA; got != want {
		t.Errorf("Salt = %q, want %q", got, want)
	}
}

func TestFingerprint_NameChangesOutput(t *testing.T) {
	a := Of("CONSUMERKEY", sourceA, "same-value")
	b := Of("CONSUMERSECRET", sourceA, "same-value")
	if a == b {
		t.Errorf("same value under two names gave the same fingerprint %q; want different", a)
	}
}

func TestFingerprint_SourceChangesOutput(t *testing.T) {
	if a, b := Of("CONSUMERKEY", sourceA, "same-value"), Of("CONSUMERKEY", sourceB, "same-value"); a == b {
		t.Errorf("same value from two deployments gave the same fingerprint %q; want different", a)
	}
	// The newline keeps the name and the source apart: moving a character across it changes
	// the salt.
	if a, b := Of("AB", "C", "v"), Of("A", "BC", "v"); a == b {
		t.Errorf("name/source split moved but fingerprint %q stayed; want different", a)
	}
}

func TestFingerprint_ValueChangesOutput(t *testing.T) {
	a := Of("CONSUMERKEY", sourceA, "value-one")
	b := Of("CONSUMERKEY", sourceA, "value-two")
	if a == b {
		t.Errorf("two values under one name gave the same fingerprint %q; want different", a)
	}
}

func TestFingerprint_Stable(t *testing.T) {
	a := Of("ACCESSSECRET", sourceA, "s3cr3t")
	b := Of("ACCESSSECRET", sourceA, "s3cr3t")
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
			if got := Of("ACCESSTOKEN", sourceA, v); strings.Contains(got, v) {
				t.Errorf("Fingerprint output %q contains the value", got)
			}
		})
	}
}

func TestFingerprint_Format(t *testing.T) {
	format := regexp.MustCompile(`^fp3:[0-9a-f]{16}$`)
	for _, name := range []string{"CONSUMERKEY", "", "ünïcode"} {
		got := Of(name, sourceA, "value")
		if !format.MatchString(got) {
			t.Errorf("Of(%q, ...) = %q, want match for %s", name, got, format)
		}
	}
	if !strings.HasPrefix(Prefix, Version) {
		t.Errorf("Prefix %q does not start with Version %q", Prefix, Version)
	}
}
