package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, tt := range []struct {
		info Info
		want string
	}{
		{Info{Version: "(devel)", GoVersion: "go1.26.0"}, "modmirror (devel) go1.26.0"},
		{Info{Version: "v1.2.3", Revision: "0123456789abcdef", GoVersion: "go1.26.0"}, "modmirror v1.2.3 (revision 0123456789ab) go1.26.0"},
		{Info{Version: "v1.2.3", Revision: "0123", Modified: true, GoVersion: "go1.26.0"}, "modmirror v1.2.3 (revision 0123, modified) go1.26.0"},
	} {
		if got := tt.info.String(); got != tt.want {
			t.Errorf("%+v.String() = %q; want %q", tt.info, got, tt.want)
		}
	}
	if got := Read(); got.GoVersion != runtime.Version() || !strings.HasPrefix(got.String(), "modmirror ") {
		t.Errorf("Read() = %+v", got)
	}
}
