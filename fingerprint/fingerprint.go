// Package fingerprint computes the short, slow, salted fingerprint the status page shows for
// each injected secret: proof that a value arrived, without revealing it. It is a package of
// its own so that the service binary does not link the ECS-agent resolver in package secrets
// (and with it the Secrets Manager and SSM clients), which only the local run needs.
package fingerprint

import (
	"encoding/hex"

	"golang.org/x/crypto/argon2"
)

// The fingerprint parameters. They are part of the fingerprint's definition: changing any of them
// changes every fingerprint, so a change must also bump Prefix (and the salt's version).
const (
	// Prefix marks the fingerprint scheme, so that a future scheme is never mistaken
	// for this one.
	Prefix = "fp2:"
	// fingerprintSaltPrefix is followed by the variable name to form the salt. Salting with the
	// name means two variables holding the same value show different fingerprints, and one
	// precomputed table cannot serve every variable.
	fingerprintSaltPrefix = "streammatch/fingerprint/v2/"
	// The argon2id cost is the last of OWASP's equal-strength settings (m=7 MiB, t=5, p=1): about
	// 20-50 ms per guess, which makes brute-forcing a low-entropy secret from the page expensive
	// while a handful of fingerprints at start-up stay cheap. Of the five settings OWASP lists as
	// equally strong, this one holds the least memory while it runs: the memory counts in the
	// task's peak RSS, and v1's m=19 MiB, t=2 alone took the service past 32 MiB (fp1 is that
	// scheme; fp2 changed nothing but the cost and the salt's version).
	fingerprintTime    = 5
	fingerprintMemory  = 7 * 1024 // KiB, as argon2.IDKey takes it
	fingerprintThreads = 1
	// fingerprintBytes is the truncated length: 64 bits is plenty to tell values apart by eye
	// and leaks far less than the full 32-byte output.
	fingerprintBytes = 8
)

// Of returns a short, stable proof that a secret value was injected, without revealing
// it. It is
//
//	"fp2:" + hex(argon2id(password=value, salt="streammatch/fingerprint/v2/"+name,
//	                      time=5, memory=7168 KiB, threads=1, keyLen=8))
//
// that is, 16 lowercase hex digits after the prefix. A plain SHA-256 prefix of a low-entropy
// secret could be brute-forced offline from the status page; a slow, salted KDF makes each guess
// cost tens of milliseconds and 7 MiB of memory. Operators reproduce a fingerprint from their
// own copy of the value with `streammatch fingerprint NAME`, which reads the value from stdin.
//
// Fingerprint takes tens of milliseconds and 7 MiB: compute it once per secret, off the request
// path, one at a time.
func Of(name, value string) string {
	salt := []byte(fingerprintSaltPrefix + name)
	sum := argon2.IDKey([]byte(value), salt, fingerprintTime, fingerprintMemory, fingerprintThreads, fingerprintBytes)
	return Prefix + hex.EncodeToString(sum)
}
