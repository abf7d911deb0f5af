// Package fingerprint computes the short, slow, salted fingerprint the status page shows for
// each injected secret: proof that a value arrived, without revealing it. It is a package of
// its own so that the service binary does not link the ECS-agent resolver in package secrets
// (and with it the SSM client and GetSecretValue), which only the local run needs.
package fingerprint

import (
	"encoding/hex"

	"golang.org/x/crypto/argon2"
)

// The fingerprint parameters. They are part of the fingerprint's definition: changing any of them
// changes every fingerprint, so a change must also bump Version, Prefix and the salt's version.
const (
	// Version names the format; the page and /api/status say which one they show.
	Version = "fp3"
	// Prefix marks the fingerprint scheme, so that a future scheme is never mistaken
	// for this one.
	Prefix = Version + ":"
	// SaltPrefix is followed by the variable name, a newline and the secret's source (its
	// valueFrom) to form the salt. Salting with the name means two variables holding the same
	// value show different fingerprints. Salting with the source means two deployments do too:
	// a Secrets Manager ARN ends in six random characters that Secrets Manager picks when the
	// secret is created, so one precomputed table of guesses cannot serve every streammatch page
	// (fp2's salt was the name alone, the same in every deployment). The newline cannot appear in
	// a variable name, so no name and source pair runs into another.
	SaltPrefix = "streammatch/fingerprint/v3/"
	// The argon2id cost is the last of OWASP's equal-strength settings (m=7 MiB, t=5, p=1): about
	// 20-50 ms per guess, which makes brute-forcing a low-entropy secret from the page expensive
	// while a handful of fingerprints at start-up stay cheap. Of the five settings OWASP lists as
	// equally strong, this one holds the least memory while it runs: the memory counts in the
	// task's peak RSS, and fp1's m=19 MiB, t=2 alone took the service past 32 MiB. fp2 had this
	// cost; fp3 changed only the salt.
	fingerprintTime    = 5
	fingerprintMemory  = 7 * 1024 // KiB, as argon2.IDKey takes it
	fingerprintThreads = 1
	// fingerprintBytes is the truncated length: 64 bits is plenty to tell values apart by eye
	// and leaks far less than the full 32-byte output.
	fingerprintBytes = 8
)

// Salt returns the salt of the fingerprint of variable name injected from source: what the
// reference argon2 CLI takes to reproduce a fingerprint (see Of).
func Salt(name, source string) string {
	return SaltPrefix + name + "\n" + source
}

// Of returns a short, stable proof that a secret value was injected, without revealing
// it. It is
//
//	"fp3:" + hex(argon2id(password=value, salt="streammatch/fingerprint/v3/"+name+"\n"+source,
//	                      time=5, memory=7168 KiB, threads=1, keyLen=8))
//
// that is, 16 lowercase hex digits after the prefix. name is the environment variable and
// source the valueFrom it was injected from ("" when the task does not say, see SECRET_SOURCES).
// A plain SHA-256 prefix of a low-entropy secret could be brute-forced offline from the status
// page; a slow, salted KDF makes each guess cost tens of milliseconds and 7 MiB of memory.
// Operators reproduce a fingerprint from their own copy of the value with
// `streammatch fingerprint -source VALUEFROM NAME`, which reads the value from stdin.
//
// Of takes tens of milliseconds and 7 MiB: compute it once per secret, off the request
// path, one at a time.
func Of(name, source, value string) string {
	sum := argon2.IDKey([]byte(value), []byte(Salt(name, source)), fingerprintTime, fingerprintMemory, fingerprintThreads, fingerprintBytes)
	return Prefix + hex.EncodeToString(sum)
}
