package httpapi

import (
	"errors"
	"time"
)

// Config tunes the HTTP front door. The zero value is usable: New fills in
// the defaults.
type Config struct {
	// MaxBodyBytes caps a request body. Default 1 MiB.
	MaxBodyBytes int64
	// RequestTimeout bounds one request's call into the grains. Default 15s.
	RequestTimeout time.Duration
	// ReadyTimeout bounds each readiness check of /readyz. Default 2s.
	ReadyTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 15 * time.Second
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 2 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("httpapi: MaxBodyBytes must be positive"))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("httpapi: RequestTimeout must be positive"))
	}
	if c.ReadyTimeout <= 0 {
		errs = append(errs, errors.New("httpapi: ReadyTimeout must be positive"))
	}
	return errors.Join(errs...)
}
