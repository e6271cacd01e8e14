package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DevKeyPath is where LoadOrCreateDevKey keeps the key, relative to its data
// directory.
const DevKeyPath = "keys/dev-signing-key.pem"

// LoadOrCreateDevKey returns the development signing key kept at
// <dataDir>/keys/dev-signing-key.pem (PKCS#8 PEM, mode 0600, directory 0700).
// The key is created on first use and reused afterwards; concurrent first
// uses agree on one key. An existing key file readable by group or others is
// refused.
func LoadOrCreateDevKey(dataDir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dataDir, DevKeyPath)
	key, err := readPrivateKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: dev key directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: dev key directory: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate dev key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("auth: encode dev key: %w", err)
	}
	// Write a temporary file, then link it into place: the link fails when
	// another process got there first, and nobody ever reads a partial key.
	tmp, err := os.CreateTemp(dir, ".dev-signing-key-*")
	if err != nil {
		return nil, fmt.Errorf("auth: write dev key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("auth: write dev key: %w", err)
	}
	if err := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("auth: write dev key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("auth: write dev key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("auth: write dev key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readPrivateKey(path)
		}
		return nil, fmt.Errorf("auth: write dev key: %w", err)
	}
	return priv, nil
}

// LoadPrivateKey reads an Ed25519 private key from a PKCS#8 "PRIVATE KEY"
// PEM file (the format of the dev key, or of `openssl genpkey -algorithm
// ed25519`). A file readable by group or others is refused.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) { return readPrivateKey(path) }

func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("auth: signing key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("auth: signing key %s has mode %v: it must not be readable by group or others (chmod 600)", path, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: signing key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("auth: signing key %s: no PKCS#8 \"PRIVATE KEY\" PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("auth: signing key %s is a %T, want Ed25519", path, k)
	}
	return priv, nil
}

// LoadPublicKeys reads Ed25519 public keys from PEM files ("PUBLIC KEY",
// PKIX), one or more blocks per file, for NewVerifier.
func LoadPublicKeys(paths ...string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("auth: public key: %w", err)
		}
		n := 0
		for {
			var block *pem.Block
			block, raw = pem.Decode(raw)
			if block == nil {
				break
			}
			if block.Type != "PUBLIC KEY" {
				return nil, fmt.Errorf("auth: public key %s: unexpected PEM block %q", path, block.Type)
			}
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("auth: public key %s: %w", path, err)
			}
			pub, ok := k.(ed25519.PublicKey)
			if !ok {
				return nil, fmt.Errorf("auth: public key %s is a %T, want Ed25519", path, k)
			}
			keys = append(keys, pub)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("auth: public key %s: no PEM block", path)
		}
	}
	return keys, nil
}

// EncodePublicKey returns pub as a PKIX "PUBLIC KEY" PEM block, the format
// LoadPublicKeys reads.
func EncodePublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("auth: encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
