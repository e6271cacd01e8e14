package hub

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	HeaderSignature = "X-Grainline-Signature"
	HeaderEventID   = "X-Grainline-Event-Id"
	HeaderEventType = "X-Grainline-Event-Type"
	HeaderAttempt   = "X-Grainline-Delivery-Attempt"
)

// Sign returns the value of X-Grainline-Signature for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>." + body)>".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrSignatureMalformed = errors.New("hub: malformed signature header")
	ErrSignatureMismatch  = errors.New("hub: signature does not match")
	ErrSignatureExpired   = errors.New("hub: signature timestamp outside the tolerance")
)

// Verify checks a X-Grainline-Signature header against body, as a receiver
// does: one of its v1 values must be the HMAC of its t and body under
// secret (compared in constant time), and t must be within tolerance of now
// (tolerance 0 skips the time check). Receivers should also dedupe by
// X-Grainline-Event-Id: delivery is at least once.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrSignatureMalformed
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil {
				return ErrSignatureMalformed
			}
			sigs = append(sigs, b)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrSignatureMalformed
	}
	want := mac(secret, ts, body)
	match := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			match = true
		}
	}
	if !match {
		return ErrSignatureMismatch
	}
	if tolerance > 0 {
		d := now.Sub(time.Unix(sec, 0))
		if d < 0 {
			d = -d
		}
		if d > tolerance {
			return ErrSignatureExpired
		}
	}
	return nil
}
