//go:build !unix

package embedded

// On platforms without flock the store relies on pebble's own LOCK file,
// whose error Open wraps with ErrLocked's wording.
type dirLock struct{}

func lockDir(string) (*dirLock, error) { return &dirLock{}, nil }

func (*dirLock) release() error { return nil }
