package proxy

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/modmirror/modmirror/shared/testkit"
)

func TestAuthThrottle(t *testing.T) {
	now := time.Unix(1000, 0)
	logs := &testkit.Buffer{}
	th := newAuthThrottle(3, time.Minute, func() time.Time { return now }, slog.New(slog.NewJSONHandler(logs, nil)))
	steps := []struct {
		advance time.Duration
		client  string
		fail    bool          // a failed authentication after the check
		want    time.Duration // retryAfter before it
	}{
		{0, "a", true, 0}, {time.Second, "a", true, 0}, {time.Second, "a", true, 0}, // three failures: throttled
		{0, "a", false, 58 * time.Second}, // until a minute after the first
		{0, "b", true, 0},                 // another client is unaffected
		{30 * time.Second, "a", false, 28 * time.Second},
		{28 * time.Second, "a", false, 0}, // the window is over
		{0, "a", true, 0},                 // a new window
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if got := th.retryAfter(s.client); got != s.want {
			t.Fatalf("step %d (%s): retryAfter = %v; want %v", i, s.client, got, s.want)
		}
		if s.fail {
			th.failed(s.client)
		}
	}
	events := strings.Count(logs.String(), `"event":"security"`)
	if events != 2 || !strings.Contains(logs.String(), `"failures":3`) || !strings.Contains(logs.String(), `"refused":2`) {
		t.Errorf("security events: %d; want 2 (throttled, window over with its counts):\n%s", events, logs)
	}
}
