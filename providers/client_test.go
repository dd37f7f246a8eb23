package providers

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// closeRecorder notes whether Close reached the wrapped body.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestLimitedBody(t *testing.T) {
	const limit = maxResponseBytes
	plain := func(r io.Reader) io.Reader { return r }
	for _, tt := range []struct {
		name    string
		size    int
		reader  func(io.Reader) io.Reader // how the body hands out its bytes
		wantErr error
	}{
		{"empty", 0, plain, nil},
		{"small", 10, plain, nil},
		{"1 MiB - 1", limit - 1, plain, nil},
		{"exactly 1 MiB", limit, plain, nil},
		{"exactly 1 MiB, EOF with the last data", limit, iotest.DataErrReader, nil},
		{"exactly 1 MiB, one byte per read", limit, iotest.OneByteReader, nil},
		{"1 MiB + 1", limit + 1, plain, errResponseTooLarge},
		{"1 MiB + 1, EOF with the last data", limit + 1, iotest.DataErrReader, errResponseTooLarge},
		{"1 MiB + 1, one byte per read", limit + 1, iotest.OneByteReader, errResponseTooLarge},
		{"8 MiB", 8 * limit, plain, errResponseTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := &limitedBody{rc: io.NopCloser(tt.reader(bytes.NewReader(make([]byte, tt.size)))), left: maxResponseBytes}
			got, err := io.ReadAll(body)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ReadAll error = %v, want %v", err, tt.wantErr)
			}
			if len(got) > limit {
				t.Errorf("read %d bytes, more than the %d limit", len(got), limit)
			}
			if tt.wantErr == nil && len(got) != tt.size {
				t.Errorf("read %d bytes, want %d", len(got), tt.size)
			}
		})
	}
}

func TestLimitedBodyClose(t *testing.T) {
	rc := &closeRecorder{Reader: strings.NewReader("x")}
	if err := (&limitedBody{rc: rc, left: 1}).Close(); err != nil {
		t.Fatal(err)
	}
	if !rc.closed {
		t.Error("Close did not reach the response body")
	}
}

// TestHTTPClient drives newHTTPClient against loopback servers: every
// provider call is bounded in size and time and follows no redirect.
func TestHTTPClient(t *testing.T) {
	elsewhere, elsewhereHits := countingServer(t)
	release := make(chan struct{})
	defer close(release)
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		wantErr bool
	}{
		{"small body", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }, false},
		{"exactly 1 MiB", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, maxResponseBytes)) }, false},
		{"1 MiB + 1", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, maxResponseBytes+1)) }, true},
		{"endless body", func(w http.ResponseWriter, r *http.Request) {
			chunk := make([]byte, 64<<10)
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, true},
		{"302 elsewhere", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL, http.StatusFound)
		}, true},
		{"308 to the same host", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" {
				http.Redirect(w, r, "/moved", http.StatusPermanentRedirect)
			}
		}, true},
		{"no answer within the timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := httptest.NewServer(tt.handler)
			defer s.Close()
			c := newHTTPClient(nil, 300*time.Millisecond)
			resp, err := c.Get(s.URL + "/")
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if got := err != nil; got != tt.wantErr {
				t.Errorf("GET error = %v, want error %v", err, tt.wantErr)
			}
			if got := elsewhereHits.Load(); got != 0 {
				t.Errorf("redirect target contacted %d times", got)
			}
		})
	}
}
