package session

import (
	"testing"
)

// A negative idle_timeout turns the idle timeout off, and validating the
// section again must not turn it back on.
func TestConfigValidateIdleOff(t *testing.T) {
	c := Config{IdleTimeout: -1}
	for i := range 2 {
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := c.IdleTimeout; got > 0 {
			t.Errorf("after Validate #%d idle_timeout = %v, want off (not positive)", i+1, got)
		}
	}
}
