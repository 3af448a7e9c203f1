package md

import (
	"strings"
	"testing"
	"time"
)

// Params that name a time outside the range of event times are config
// errors; before, time.Time.UnixNano wrapped them into 1677–1816.
func TestParseTimeOutOfRange(t *testing.T) {
	for _, s := range []string{"2300-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"} {
		if v, err := ParseTime(s); err == nil || !strings.Contains(err.Error(), "outside the range of event times") {
			t.Errorf("ParseTime(%s) = %s, %v; want an out-of-range error", s, FormatTime(v), err)
		}
	}
	if v, err := ParseTime("2262-04-11T23:47:16Z"); err != nil || v != time.Date(2262, 4, 11, 23, 47, 16, 0, time.UTC).UnixNano() {
		t.Errorf("last second in range: %d %v", v, err)
	}
}

func TestParseDurationOverflow(t *testing.T) {
	for _, s := range []string{"106752d", "1000000000000d", "106751d24h"} {
		if d, err := ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%s) = %v, want an error", s, d)
		}
	}
	if d, err := ParseDuration("106751d"); err != nil || d != 106751*24*time.Hour {
		t.Errorf("106751d: %v %v", d, err)
	}
}
