package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Where `portcullis login` keeps its tokens: one JSON file, a map from the
// gateway's origin to its token, in a directory only the user can enter,
// readable only by the user, replaced whole on every change (as kubectl
// and gh keep credentials).

// storedToken is one gateway's token.
type storedToken struct {
	AccessToken string    `json:"access_token"`
	ExpiresAt   time.Time `json:"expires_at"`
	ObtainedAt  time.Time `json:"obtained_at"`
}

// tokenStore is the tokens file.
type tokenStore struct {
	dir, path string
}

// cliConfigDirEnv names the directory that holds tokens.json in place of
// the user configuration directory's portcullis/ (tests, several
// identities side by side).
const cliConfigDirEnv = "PORTCULLIS_CONFIG_DIR"

// openTokenStore finds the tokens file; it creates nothing until a token
// is stored.
func openTokenStore() (*tokenStore, error) {
	dir := os.Getenv(cliConfigDirEnv)
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return nil, fmt.Errorf("finding where to keep tokens: %w (set %s)", err, cliConfigDirEnv)
		}
		dir = filepath.Join(base, "portcullis")
	}
	return &tokenStore{dir: dir, path: filepath.Join(dir, "tokens.json")}, nil
}

// errExposed: the tokens file can be read by other users.
var errExposed = errors.New("tokens file readable by others")

// load reads every token. A file that other users could read is refused
// with errExposed (wrapped with how to fix it); allowExposed reads it all
// the same (logout, which revokes and rewrites it 0600).
func (s *tokenStore) load(allowExposed bool) (map[string]*storedToken, error) {
	tokens := map[string]*storedToken{}
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return tokens, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading tokens: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading tokens: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", s.path)
	}
	var exposed error
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		exposed = fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s (and consider its tokens seen: portcullis logout URL revokes one)",
			errExposed, s.path, perm, s.path)
		if !allowExposed {
			return nil, exposed
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("reading tokens: %w", err)
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &tokens); err != nil {
			return nil, fmt.Errorf("%s is not a tokens file: %w (remove it and sign in again)", s.path, err)
		}
	}
	for k, v := range tokens {
		if v == nil {
			delete(tokens, k)
		}
	}
	return tokens, exposed
}

// get returns origin's token, nil when there is none.
func (s *tokenStore) get(origin string) (*storedToken, error) {
	tokens, err := s.load(false)
	if err != nil {
		return nil, err
	}
	return tokens[origin], nil
}

// put stores origin's token (nil: removes it). The file is rewritten
// 0600, so a file other users could read is read here all the same:
// callers that must refuse it (login, before it starts) ask get first.
func (s *tokenStore) put(origin string, t *storedToken) error {
	tokens, err := s.load(true)
	if err != nil && !errors.Is(err, errExposed) {
		return err
	}
	if t == nil {
		delete(tokens, origin)
	} else {
		tokens[origin] = t
	}
	return s.save(tokens)
}

// save replaces the file atomically: a temporary file of mode 0600 in the
// same directory, synced, then renamed over it. The directory is created
// 0700 and refused when other users could change what is in it.
func (s *tokenStore) save(tokens map[string]*storedToken) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", s.dir, err)
	}
	if st, err := os.Stat(s.dir); err != nil {
		return err
	} else if runtime.GOOS != "windows" && st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s can be written by other users (mode %04o); run chmod 700 %s", s.dir, st.Mode().Perm(), s.dir)
	}
	b, err := json.MarshalIndent(tokens, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, ".tokens-*.json") // mode 0600
	if err != nil {
		return fmt.Errorf("writing tokens: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("writing tokens: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		return fmt.Errorf("writing tokens: %w", err)
	}
	return nil
}
